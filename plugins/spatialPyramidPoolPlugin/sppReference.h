/*
 * C ABI of the CPU reference library (libspp_reference.so): no CUDA, no TensorRT.
 *
 * Enum values: mode 0=max 1=avg; bins 0=adaptive 1=ceil_pad 2=floor_kernel 3=rounded;
 * order 0=channel_major 1=bin_major. Status codes, SPP_API and SppCField: ../common/sppCAbi.h.
 */
#ifndef SPP_REFERENCE_H
#define SPP_REFERENCE_H

#include "../common/sppCAbi.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SPP_ABI_VERSION 1

/* Most pyramid levels a config holds (spp::kMAX_NB_LEVELS in sppBins.h; static_assert in sppReference.cpp). */
#define SPP_MAX_NB_LEVELS 16

typedef struct SppCConfig
{
    int32_t nbLevels;
    int32_t levels[SPP_MAX_NB_LEVELS];
    int32_t mode;
    int32_t bins;
    int32_t order;
} SppCConfig;

SPP_API int32_t spp_abi_version(void);
SPP_API const char* spp_status_string(int32_t status);

/* C * sum(n^2); -1 on bad arguments. */
SPP_API int64_t spp_feature_count(int64_t channels, const int32_t* levels, int32_t nbLevels);

/* Bins of one axis of `size` at level n (H = height for floor_kernel): fills start/end/span[n].
 * Returns 1 when the axis is legal (rule validity and in-bounds), 0 when not, -1 on bad arguments. */
SPP_API int32_t spp_axis_bins(
    int32_t bins, int64_t size, int32_t n, int64_t height, int64_t* start, int64_t* end, int64_t* span);

/* 0 when legal at H x W for every level, else 1 + index of the first failing level; -1 on bad args. */
SPP_API int32_t spp_size_error(int32_t bins, int64_t H, int64_t W, const int32_t* levels, int32_t nbLevels);

/* Whole pyramid of an NCHW float32 input into out[B, C * sum(n^2)] (outCount elements available).
 * Max propagates NaN; avg accumulates in double. Returns an SPP_STATUS_* code; nothing is read or
 * written on error. */
SPP_API int32_t spp_reference_forward_f32(const float* x, int64_t B, int64_t C, int64_t H, int64_t W,
    const int32_t* levels, int32_t nbLevels, int32_t mode, int32_t bins, int32_t order, float* out,
    int64_t outCount);

/* Same for fp16 input given as IEEE half bits; avg accumulates in float; output float32 (the value
 * the CUDA kernel rounds to half with round-to-nearest-even). */
SPP_API int32_t spp_reference_forward_f16(const uint16_t* x, int64_t B, int64_t C, int64_t H, int64_t W,
    const int32_t* levels, int32_t nbLevels, int32_t mode, int32_t bins, int32_t order, float* out,
    int64_t outCount);

/* Config parser (the plugin's createPlugin path). Returns SPP_STATUS_OK or SPP_STATUS_BAD_CONFIG
 * with a NUL-terminated message in err[errLen]. */
SPP_API int32_t spp_config_parse(
    const SppCField* fields, int32_t nbFields, SppCConfig* out, char* err, int32_t errLen);

/* Serialize into buf[bufLen]; returns the blob size (call with buf=NULL to query), -1 on error. */
SPP_API int64_t spp_config_serialize(const SppCConfig* cfg, uint8_t* buf, int64_t bufLen);

/* Parse a blob; SPP_STATUS_OK or SPP_STATUS_BAD_CONFIG (+ message). */
SPP_API int32_t spp_config_deserialize(const uint8_t* buf, int64_t len, SppCConfig* out, char* err, int32_t errLen);

#ifdef __cplusplus
}
#endif

#endif /* SPP_REFERENCE_H */
