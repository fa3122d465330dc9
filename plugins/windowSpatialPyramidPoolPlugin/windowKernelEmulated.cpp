/*
 * The window SPP CUDA kernel run by the host SIMT emulator (plugins/simt): a C ABI library for the
 * tests. Compiles the real windowSpatialPyramidPoolKernel.cu as host C++ (-DSIMT_EMULATION) and
 * calls its launcher, launchWindowSpatialPyramidPool, the function the plugin's enqueue calls: the
 * same host checks, plan, grid, block and shared-memory size, then every block's threads as fibers.
 * (spp_deploy.window_native.build_window_emulator builds it.)
 */
#include "../simt/simtEmu.h" // first: sppBins.h then takes its device branch (__fmul_rn & co.)

#include "windowSpatialPyramidPoolKernel.cu"

#include <algorithm>
#include <cstring>

#define SPP_EMU_API extern "C" __attribute__((visibility("default")))

//! Status returned when the emulated kernel itself faulted (message in err).
constexpr int32_t kSPP_EMU_FAULT = 100;

//! The last launch (same layout as sppKernelEmulated.cpp's, spp_deploy.simt.LaunchInfo).
struct WindowEmuLaunch
{
    int64_t launches;
    uint32_t grid[3];
    uint32_t block[3];
    int64_t sharedBytes;
    uint32_t gridXRun;
    int32_t cudaError;
};

SPP_EMU_API int32_t spp_window_emu_abi_version()
{
    return 1;
}

/* Window pyramid of maps [S, C, H, W] (mapType 0 = float32, 1 = float16 bits) and windows [R, 5]
 * (windowType likewise) into out [R, C * sum(n^2)] (mapType) by the emulated CUDA kernel.
 * schedule: simt::Schedule; clampGridX: 0, or run at most that many blocks (grid-stride check).
 * Returns the launcher's status (0..4), or 100 when the kernel faulted (reason in err). */
SPP_EMU_API int32_t spp_window_emu_forward(void const* maps, int32_t mapType, void const* windows, int32_t windowType,
    int64_t S, int64_t C, int64_t H, int64_t W, int64_t R, int32_t const* levels, int32_t nbLevels,
    double const* projection, void* out, int32_t schedule, uint64_t seed, uint32_t clampGridX, WindowEmuLaunch* launch,
    char* err, int32_t errLen)
{
    simt::resetState();
    simt::Options o;
    o.schedule = static_cast<simt::Schedule>(schedule);
    o.seed = seed;
    o.clampGridX = clampGridX;
    simt::setOptions(o);
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
    cudaError_t cudaErr = cudaSuccess;
    int32_t status = spp::launchWindowSpatialPyramidPool(maps, windows, out, static_cast<spp::DType>(mapType),
        static_cast<spp::DType>(windowType), S, C, H, W, R, p, nullptr, &cudaErr);
    std::string const& fault = simt::fault();
    if (status == spp::kSPP_OK && !fault.empty())
    {
        status = kSPP_EMU_FAULT;
    }
    if (err != nullptr && errLen > 0)
    {
        size_t const n = std::min(fault.size(), static_cast<size_t>(errLen - 1));
        std::memcpy(err, fault.data(), n);
        err[n] = '\0';
    }
    if (launch != nullptr)
    {
        auto const& all = simt::launches();
        *launch = WindowEmuLaunch{};
        launch->launches = static_cast<int64_t>(all.size());
        launch->cudaError = static_cast<int32_t>(cudaErr);
        if (!all.empty())
        {
            simt::LaunchRecord const& r = all.back();
            launch->grid[0] = r.grid.x;
            launch->grid[1] = r.grid.y;
            launch->grid[2] = r.grid.z;
            launch->block[0] = r.block.x;
            launch->block[1] = r.block.y;
            launch->block[2] = r.block.z;
            launch->sharedBytes = static_cast<int64_t>(r.sharedBytes);
            launch->gridXRun = r.gridXRun;
        }
    }
    simt::clearTracked();
    return status;
}
