/*
 * The SPP CUDA kernel run by the host SIMT emulator (plugins/simt): a C ABI library for the tests.
 *
 * This file compiles the real spatialPyramidPoolKernel.cu as host C++ (-DSIMT_EMULATION) and calls
 * its launcher, launchSpatialPyramidPool, the function the plugin's enqueue calls: the same host
 * checks, plan, grid, block and shared-memory size, then every block's threads as fibers.
 *
 *   g++ -std=c++17 -shared -fPIC -ffp-contract=off -DSIMT_EMULATION -isystem <cuda>/include
 *       sppKernelEmulated.cpp ../simt/simtEmu.cpp -o libspp_kernel_emu.so
 * (spp_deploy.native.emulator.build_kernel_emulator does this).
 */
#ifndef SIMT_EMULATION
#define SIMT_EMULATION 1 // a host build of a .cu file (simt.h): any plain g++ check compiles it
#endif
#include "../simt/simtEmu.h" // first: sppBins.h then takes its device branch (__fmul_rn & co.)

#include "spatialPyramidPoolKernel.cu"

#include "../simt/simtDriver.h"

SIMT_DRIVER_API int32_t spp_emu_abi_version()
{
    return 1;
}

/* Whole pyramid of x [B, C, H, W] (dtype 0 = float32, 1 = float16 bits) into out [B, C * sum(n^2)] of
 * the same dtype, by the emulated CUDA kernel. schedule: simt::Schedule (0 forward, 1 reverse,
 * 2 shuffled with `seed`); clampGridX: 0, or run at most that many blocks (grid-stride check).
 * Returns the launcher's status (0..4), or 100 when the kernel faulted (reason in err). */
SIMT_DRIVER_API int32_t spp_emu_forward(void const* x, int32_t dtype, int64_t B, int64_t C, int64_t H, int64_t W,
    int32_t const* levels, int32_t nbLevels, int32_t mode, int32_t bins, int32_t order, void* out,
    int32_t schedule, uint64_t seed, uint32_t clampGridX, simt::DriverLaunch* launch, char* err, int32_t errLen)
{
    simt::beginRun(schedule, seed, clampGridX);
    if (x != nullptr && B > 0 && C > 0 && H > 0 && W > 0)
    {
        size_t const elem = dtype == 1 ? sizeof(__half) : sizeof(float);
        simt::trackGlobal(x, static_cast<size_t>(B * C * H * W) * elem);
    }
    spp::SppParams p{};
    p.nbLevels = nbLevels;
    for (int32_t l = 0; l < nbLevels && l < spp::kMAX_NB_LEVELS; ++l)
    {
        p.levels[l] = levels[l];
    }
    p.mode = static_cast<spp::PoolMode>(mode);
    p.bins = static_cast<spp::BinRule>(bins);
    p.order = static_cast<spp::FlattenOrder>(order);
    cudaError_t cudaErr = cudaSuccess;
    int32_t const status = spp::launchSpatialPyramidPool(
        x, out, static_cast<spp::DType>(dtype), B, C, H, W, p, nullptr, &cudaErr);
    return simt::finishRun(status, spp::kSPP_OK, cudaErr, launch, err, errLen);
}
