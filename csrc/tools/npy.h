// Minimal .npy (format 1.0/2.0/3.0) reading and writing: C-ordered little-endian float32, uint8,
// int8 and int32 arrays, enough to move model inputs and outputs between a host and a device.
#pragma once

#include <string>

#include "intinfer/model.h"

namespace intinfer {

HostTensor read_npy(const std::string& path);  // throws std::runtime_error naming the problem
void write_npy(const std::string& path, const HostTensor& t);

}  // namespace intinfer
