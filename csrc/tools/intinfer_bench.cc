// intinfer-bench: load a .iif, run it on random inputs or on .npy files, and report latency
// (min / median / mean / p90), peak memory and, with --profile, the time of every op.
// In the manner of TFLite's benchmark_model; no Python needed, so it runs on phones and boards.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "intinfer/model.h"
#include "npy.h"

using namespace intinfer;

namespace {

const char* kUsage =
    "usage: intinfer-bench MODEL.iif [options]\n"
    "  --runs N          timed runs (default 50)\n"
    "  --warmup N        untimed runs first (default 5)\n"
    "  --threads N       intra-op threads (default: physical cores)\n"
    "  --isa NAME        force a kernel path: ref, avx2, ... (sets INTINFER_ISA)\n"
    "  --batch N         size of dynamic input dimensions for random inputs (default 1)\n"
    "  --input FILE.npy  an input, in model input order (repeat for several inputs)\n"
    "  --output-dir DIR  write each output as DIR/<output name>.npy (after the last run;\n"
    "                    DIR and its parents are made when missing)\n"
    "  --profile         per-op table: median time, share of the total, GOPS of convs and GEMMs\n"
    "  --mark-ops        a getppid() call before each op of every run and after its last (markers\n"
    "                    for the instruction counter of ../shared/tools/arm-peers), then one line\n"
    "                    `op INDEX TYPE NAME` per op\n";

struct Args {
  std::string model;
  int runs = 50, warmup = 5, threads = 0, batch = 1;
  std::vector<std::string> inputs;
  std::string output_dir;
  bool profile = false;
  bool mark_ops = false;
};

[[noreturn]] void usage_error(const std::string& why) {
  std::fprintf(stderr, "intinfer-bench: %s\n%s", why.c_str(), kUsage);
  std::exit(2);
}

int to_int(const char* s, const char* flag) {
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < 0 || v > 1000000) usage_error(std::string("bad value for ") + flag + ": " + s);
  return static_cast<int>(v);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage_error(s + " needs a value");
      return argv[++i];
    };
    if (s == "--runs") a.runs = std::max(1, to_int(value(), "--runs"));
    else if (s == "--warmup") a.warmup = to_int(value(), "--warmup");
    else if (s == "--threads") a.threads = to_int(value(), "--threads");
    else if (s == "--batch") a.batch = std::max(1, to_int(value(), "--batch"));
    else if (s == "--isa") setenv("INTINFER_ISA", value(), 1);
    else if (s == "--input") a.inputs.push_back(value());
    else if (s == "--output-dir") a.output_dir = value();
    else if (s == "--profile") a.profile = true;
    else if (s == "--mark-ops") a.mark_ops = true;
    else if (s == "--help" || s == "-h") { std::fputs(kUsage, stdout); std::exit(0); }
    else if (!s.empty() && s[0] != '-' && a.model.empty()) a.model = s;
    else usage_error("unknown argument '" + s + "'");
  }
  if (a.model.empty()) usage_error("no model given");
  return a;
}

std::vector<HostTensor> make_inputs(const Model& m, const Args& a) {
  std::vector<HostTensor> inputs;
  if (!a.inputs.empty()) {
    if (a.inputs.size() != m.inputs().size())
      usage_error("the model takes " + std::to_string(m.inputs().size()) + " inputs, " +
                  std::to_string(a.inputs.size()) + " --input given");
    for (const std::string& path : a.inputs) inputs.push_back(read_npy(path));
    return inputs;
  }
  std::mt19937 rng(12345);
  for (const TensorInfo& info : m.inputs()) {
    HostTensor t;
    t.dtype = info.dtype;
    t.shape = info.shape;
    size_t n = dtype_size(t.dtype);
    for (int64_t& d : t.shape) n *= static_cast<size_t>(d = d < 0 ? a.batch : d);
    t.bytes.resize(n);
    if (t.dtype == DType::kFloat32) {
      std::normal_distribution<float> dist(0.0f, 1.0f);
      for (size_t i = 0; i < n / 4; ++i) {
        const float v = dist(rng);
        std::memcpy(t.bytes.data() + 4 * i, &v, 4);
      }
    } else if (t.dtype == DType::kInt32) {
      // Token ids below their table's rows; int32 inputs that are not ids are attention masks,
      // where every position takes part.
      std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(std::max<int64_t>(info.id_rows, 1) - 1));
      for (size_t i = 0; i < n / 4; ++i) {
        const int32_t v = info.id_rows > 0 ? id(rng) : 1;
        std::memcpy(t.bytes.data() + 4 * i, &v, 4);
      }
    } else {
      for (auto& b : t.bytes) b = static_cast<uint8_t>(rng());
    }
    t.data = t.bytes.data();
    inputs.push_back(std::move(t));
  }
  return inputs;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

void print_profile(const Model& m, const std::vector<Shape>& shapes, const std::vector<std::vector<double>>& per_run) {
  const std::vector<OpInfo> ops = m.ops();
  const std::vector<OpCost> costs = m.op_costs(shapes);
  std::vector<double> med(ops.size());
  double total = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    std::vector<double> v;
    for (const auto& run : per_run) v.push_back(run[i]);
    med[i] = percentile(v, 0.5);
    total += med[i];
  }
  std::vector<size_t> order(ops.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return med[a] > med[b]; });
  std::printf("\n%-4s %-16s %-32s %10s %7s %8s\n", "#", "op", "name", "ms", "share", "GOPS");
  for (size_t i : order) {
    const uint64_t macs = costs[i].macs;
    const double gops = macs ? 2.0 * macs / med[i] / 1e9 : 0.0;
    std::printf("%-4zu %-16s %-32.32s %10.3f %6.1f%% ", i, ops[i].type.c_str(), ops[i].name.c_str(), med[i] * 1e3,
                100.0 * med[i] / total);
    if (macs) std::printf("%8.1f\n", gops); else std::printf("%8s\n", "-");
  }
  std::map<std::string, double> by_type;
  for (size_t i = 0; i < ops.size(); ++i) by_type[ops[i].type] += med[i];
  std::printf("by op type:");
  for (const auto& [type, s] : by_type) std::printf("  %s %.3f ms (%.1f%%)", type.c_str(), s * 1e3, 100.0 * s / total);
  std::printf("\nsum of op medians: %.3f ms\n", total * 1e3);
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  try {
    // Made before the runs, so that a folder that cannot be made fails at once, not after them.
    if (!a.output_dir.empty()) std::filesystem::create_directories(a.output_dir);
    Options options;
    options.num_threads = a.threads;
    auto model = Model::load_file(a.model, options);
    std::vector<HostTensor> inputs = make_inputs(*model, a);
    std::vector<Shape> shapes;
    for (const HostTensor& t : inputs) shapes.push_back(t.shape);
    Session session(model);
    std::function<void(size_t)> mark;
    if (a.mark_ops) mark = [](size_t) { getppid(); };
    std::vector<HostTensor> outputs;
    for (int i = 0; i < a.warmup; ++i) outputs = session.run(inputs, nullptr, mark);
    std::vector<double> seconds;
    std::vector<std::vector<double>> op_seconds;
    for (int i = 0; i < a.runs; ++i) {
      std::vector<double> ops;
      const auto start = std::chrono::steady_clock::now();
      outputs = session.run(inputs, a.profile ? &ops : nullptr, mark);
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      if (a.profile) op_seconds.push_back(std::move(ops));
    }
    double mean = 0;
    for (double s : seconds) mean += s / seconds.size();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    std::printf("model: %s\nkernels: %s, threads: %d, inputs:", a.model.c_str(), model->isa(), model->num_threads());
    for (const Shape& s : shapes) std::printf(" %s", shape_str(s).c_str());
    std::printf("\nruns: %d (after %d warm-up)\nlatency ms: min %.3f  median %.3f  mean %.3f  p90 %.3f\n", a.runs,
                a.warmup, percentile(seconds, 0.0) * 1e3, percentile(seconds, 0.5) * 1e3, mean * 1e3,
                percentile(seconds, 0.9) * 1e3);
    const MemoryInfo mem = model->memory(shapes);
    std::printf("peak memory (max RSS): %.1f MiB; activation arena %.2f MiB\n", ru.ru_maxrss / 1024.0,
                mem.arena_bytes / 1048576.0);
    if (a.profile) print_profile(*model, shapes, op_seconds);
    if (a.mark_ops) {
      const std::vector<OpInfo> ops = model->ops();
      for (size_t i = 0; i < ops.size(); ++i)
        std::printf("op %zu %s %s\n", i, ops[i].type.c_str(), ops[i].name.c_str());
    }
    if (!a.output_dir.empty()) {
      for (size_t i = 0; i < outputs.size(); ++i) {
        const std::string path = a.output_dir + "/" + model->outputs()[i].name + ".npy";
        write_npy(path, outputs[i]);
        std::printf("wrote %s\n", path.c_str());
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "intinfer-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
