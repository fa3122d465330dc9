/*
 * What both CPU reference libraries' C ABIs share (libspp_reference.so, loaded with ctypes): the
 * export macro, the status codes and the C view of a plugin field. Here, not in a plugin folder,
 * so common/referenceAbi.h depends on no plugin. C, no CUDA, no TensorRT.
 *
 * Field types use nvinfer1::PluginFieldType numbering (5 = kINT32, 6 = kCHAR, 8 = kUNKNOWN, 10 = kINT64).
 */
#ifndef SPP_C_ABI_H
#define SPP_C_ABI_H

#include <stdint.h>

#if defined(_WIN32)
#define SPP_API __declspec(dllexport)
#else
#define SPP_API __attribute__((visibility("default")))
#endif

/* Status codes (shared with the CUDA launchers: spp::SppStatus in sppTypes.h). */
#define SPP_STATUS_OK 0
#define SPP_STATUS_ILLEGAL_SIZE 1 /* the bin rule is undefined / not fixed-length at this H x W */
#define SPP_STATUS_BAD_CONFIG 2   /* levels/mode/bins/order out of range */
#define SPP_STATUS_BAD_ARGUMENT 3 /* null pointer, negative dims, output buffer too small */
#define SPP_STATUS_CUDA_ERROR 4   /* kernel launch failed (CUDA launcher only) */

/* One createPlugin field as C sees it (name, data, PluginFieldType number, element count). */
typedef struct SppCField
{
    const char* name;
    const void* data;
    int32_t type;
    int32_t length;
} SppCField;

#endif /* SPP_C_ABI_H */
