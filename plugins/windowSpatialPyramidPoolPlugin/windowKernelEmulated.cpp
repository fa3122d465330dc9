/*
 * The window SPP CUDA kernel run by the host SIMT emulator (plugins/simt): a C ABI library for the
 * tests. Compiles the real windowSpatialPyramidPoolKernel.cu as host C++ (-DSIMT_EMULATION) and
 * calls its launcher, launchWindowSpatialPyramidPool, the function the plugin's enqueue calls: the
 * same host checks, plan, grids, blocks and shared-memory sizes, then every block's threads as fibers;
 * the driver allocates the workspace (windowWorkspaceSize) as TensorRT would.
 * (spp_deploy.native.emulator.build_window_emulator builds it.)
 */
#ifndef SIMT_EMULATION
#define SIMT_EMULATION 1 // a host build of a .cu file (simt.h): any plain g++ check compiles it
#endif
#include "../simt/simtEmu.h" // first: sppBins.h then takes its device branch (__fmul_rn & co.)

#include "windowSpatialPyramidPoolKernel.cu"

#include "../simt/simtDriver.h"

#include <vector>

SIMT_DRIVER_API int32_t spp_window_emu_abi_version()
{
    return 1;
}

/* The workspace the launcher needs for maps [S, C, H, W] of mapType (0 = float32, 1 = float16), in bytes. */
SIMT_DRIVER_API int64_t spp_window_emu_workspace_size(int32_t mapType, int64_t S, int64_t C, int64_t H, int64_t W)
{
    return static_cast<int64_t>(spp::windowWorkspaceSize(static_cast<spp::DType>(mapType), S, C, H, W));
}

/* Window pyramid of maps [S, C, H, W] (mapType 0 = float32, 1 = float16 bits) and windows [R, 5]
 * (windowType likewise) into out [R, C * sum(n^2)] (mapType) by the emulated CUDA kernel.
 * schedule: simt::Schedule; clampGridX: 0, or run at most that many blocks (grid-stride check).
 * Returns the launcher's status (0..4), or 100 when the kernel faulted (reason in err). */
SIMT_DRIVER_API int32_t spp_window_emu_forward(void const* maps, int32_t mapType, void const* windows, int32_t windowType,
    int64_t S, int64_t C, int64_t H, int64_t W, int64_t R, int32_t const* levels, int32_t nbLevels,
    double const* projection, void* out, int32_t schedule, uint64_t seed, uint32_t clampGridX, simt::DriverLaunch* launch,
    char* err, int32_t errLen)
{
    simt::beginRun(schedule, seed, clampGridX);
    if (maps != nullptr && S * C * H * W > 0)
    {
        simt::trackGlobal(maps, static_cast<size_t>(S * C * H * W) * (mapType == 1 ? sizeof(__half) : sizeof(float)));
    }
    if (windows != nullptr && R > 0)
    {
        simt::trackGlobal(windows, static_cast<size_t>(R * 5) * (windowType == 1 ? sizeof(__half) : sizeof(float)));
    }
    spp::WindowParams p{};
    p.nbLevels = nbLevels;
    for (int32_t l = 0; l < nbLevels && l < spp::kMAX_NB_LEVELS; ++l)
    {
        p.levels[l] = levels[l];
    }
    p.projection = spp::WindowProjection{projection[0], projection[1], projection[2]};
    // The workspace as TensorRT would give it (256-byte aligned), filled with a large positive value
    // in both fp32 and fp16 (bytes 0x7B): a cell the transpose never wrote would win the max.
    size_t const wsBytes = spp::windowWorkspaceSize(static_cast<spp::DType>(mapType), S, C, H, W);
    std::vector<unsigned char> wsBuf(wsBytes + 256, 0x7B);
    void* ws = wsBytes > 0 ? wsBuf.data() + (256 - reinterpret_cast<uintptr_t>(wsBuf.data()) % 256) % 256 : nullptr;
    if (ws != nullptr)
    {
        simt::trackGlobal(ws, wsBytes);
    }
    cudaError_t cudaErr = cudaSuccess;
    int32_t const status = spp::launchWindowSpatialPyramidPool(maps, windows, out, ws,
        static_cast<spp::DType>(mapType), static_cast<spp::DType>(windowType), S, C, H, W, R, p, nullptr, &cudaErr);
    return simt::finishRun(status, spp::kSPP_OK, cudaErr, launch, err, errLen);
}
