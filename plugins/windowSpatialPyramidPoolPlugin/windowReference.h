/*
 * C ABI of the window SPP CPU reference, in the same library as the SPP reference
 * (libspp_reference.so; status codes and SppCField from sppReference.h). No CUDA, no TensorRT.
 *
 * Windows are [R, 5] float64 rows (map index, x1, y1, x2, y2): the plugin widens its fp32/fp16
 * input to float64 exactly, so passing the widened values here is the same computation.
 * projection = (stride, offset0, offset). A window the eager op refuses (non-finite, map index not
 * an integer in [0, S)) gives a NaN output row (the plugin does the same; the eager op raises).
 */
#ifndef SPP_WINDOW_REFERENCE_H
#define SPP_WINDOW_REFERENCE_H

#include "../spatialPyramidPoolPlugin/sppReference.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct SppCWindowConfig
{
    int32_t nbLevels;
    int32_t levels[SPP_MAX_NB_LEVELS];
    double projection[3];
} SppCWindowConfig;

/* 1 when n is a supported window level (windowSpp.h kWINDOW_LEVELS), else 0. */
SPP_API int32_t spp_window_level_supported(int32_t n);

/* windowSpp.h projectWindow on R rows: cells[R, 5] = (map, left, top, right, bottom), valid[R]. */
SPP_API int32_t spp_window_project(const double* windows, int64_t R, int64_t S, int64_t H, int64_t W,
    const double* projection, int64_t* cells, int32_t* valid);

/* Window pyramid of maps x [S, C, H, W] into out[R, C * sum(n^2)] (outCount elements available);
 * levels in order, each flattened channel-major; max with a zero-initialised accumulator. */
SPP_API int32_t spp_window_reference_forward_f32(const float* x, int64_t S, int64_t C, int64_t H, int64_t W,
    const double* windows, int64_t R, const int32_t* levels, int32_t nbLevels, const double* projection, float* out,
    int64_t outCount);

/* Same for fp16 maps given as IEEE half bits; output float32 (every value is a half, or NaN). */
SPP_API int32_t spp_window_reference_forward_f16(const uint16_t* x, int64_t S, int64_t C, int64_t H, int64_t W,
    const double* windows, int64_t R, const int32_t* levels, int32_t nbLevels, const double* projection, float* out,
    int64_t outCount);

/* The window plugin's createPlugin field parser / serialization (windowConfig.h). */
SPP_API int32_t spp_window_config_parse(
    const SppCField* fields, int32_t nbFields, SppCWindowConfig* out, char* err, int32_t errLen);
SPP_API int64_t spp_window_config_serialize(const SppCWindowConfig* cfg, uint8_t* buf, int64_t bufLen);
SPP_API int32_t spp_window_config_deserialize(
    const uint8_t* buf, int64_t len, SppCWindowConfig* out, char* err, int32_t errLen);

#ifdef __cplusplus
}
#endif

#endif /* SPP_WINDOW_REFERENCE_H */
