#include "cpu.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace intinfer {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kRef: return "ref";
  }
  return "?";
}

Isa select_isa() {
  const char* forced = std::getenv("INTINFER_ISA");
  if (forced == nullptr || *forced == '\0') return Isa::kRef;
  const std::string name(forced);
  if (name == "ref") return Isa::kRef;
  throw std::runtime_error("INTINFER_ISA='" + name + "' is not a path this build of intinfer can run (available: ref)");
}

}  // namespace intinfer
