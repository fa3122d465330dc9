/*
 * What both plugins' launchers and the TensorRT glue share about a launch: the tensor dtype and the
 * status a launcher returns. Here, not in a plugin folder, so common/ depends on no plugin.
 * Plain C++ (no CUDA, no TensorRT).
 */
#ifndef SPP_TYPES_H
#define SPP_TYPES_H

#include <stdint.h>

namespace spp
{

enum class DType : int32_t
{
    kFLOAT32 = 0,
    kFLOAT16 = 1,
};

//! Status codes: same values as the reference library's SPP_STATUS_* (sppCAbi.h).
enum SppStatus : int32_t
{
    kSPP_OK = 0,
    kSPP_ILLEGAL_SIZE = 1,
    kSPP_BAD_CONFIG = 2,
    kSPP_BAD_ARGUMENT = 3,
    kSPP_CUDA_ERROR = 4,
};

} // namespace spp

#endif // SPP_TYPES_H
