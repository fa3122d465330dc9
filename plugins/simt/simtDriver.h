/*
 * What every emulated-kernel driver (a C ABI library the tests load with ctypes) does around its
 * launcher call: set the emulator up for one run, then hand back the kernel's fault message and the
 * last launch's geometry. Header-only: spp_deploy.native.emulator builds each driver as one translation unit
 * with simtEmu.cpp. Include after simtEmu.h.
 */
#ifndef SIMT_DRIVER_H
#define SIMT_DRIVER_H

#include "simtEmu.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#define SIMT_DRIVER_API extern "C" __attribute__((visibility("default")))

namespace simt
{

//! Status a driver returns when the launcher succeeded but the emulated kernel faulted (message in err).
constexpr int32_t kEMU_FAULT = 100;

//! The last launch: as the launcher requested it, and how many blocks ran along x
//! (the layout of spp_deploy.native.emulator.LaunchInfo).
struct DriverLaunch
{
    int64_t launches;
    uint32_t grid[3];
    uint32_t block[3];
    int64_t sharedBytes;
    uint32_t gridXRun;
    int32_t cudaError;
};

//! The error the next run starts with pending (simt_emu_set_pending_error), then cudaSuccess again.
inline cudaError_t& pendingAtNextRun()
{
    static cudaError_t e = cudaSuccess;
    return e;
}

//! Whether runs count memory traffic (simt_emu_count_traffic; stays set until changed).
inline bool& countTrafficInRuns()
{
    static bool on = false;
    return on;
}

//! A fresh emulator for one run. schedule: simt::Schedule; clampGridX: 0, or run at most that many blocks.
inline void beginRun(int32_t schedule, uint64_t seed, uint32_t clampGridX = 0)
{
    resetState();
    setLastError(pendingAtNextRun());
    pendingAtNextRun() = cudaSuccess;
    Options o;
    o.schedule = static_cast<Schedule>(schedule);
    o.seed = seed;
    o.clampGridX = clampGridX;
    o.countTraffic = countTrafficInRuns();
    setOptions(o);
}

//! Ends a run: the kernel's fault (empty if none) into err[errLen], the last launch into *launch
//! (may be null), tracked memory released. Returns status, or kEMU_FAULT when status is okStatus
//! and the kernel faulted.
inline int32_t finishRun(
    int32_t status, int32_t okStatus, cudaError_t cudaErr, DriverLaunch* launch, char* err, int32_t errLen)
{
    std::string const& f = fault();
    if (status == okStatus && !f.empty())
    {
        status = kEMU_FAULT;
    }
    if (err != nullptr && errLen > 0)
    {
        size_t const n = std::min(f.size(), static_cast<size_t>(errLen - 1));
        std::memcpy(err, f.data(), n);
        err[n] = '\0';
    }
    if (launch != nullptr)
    {
        auto const& all = launches();
        *launch = DriverLaunch{};
        launch->launches = static_cast<int64_t>(all.size());
        launch->cudaError = static_cast<int32_t>(cudaErr);
        if (!all.empty())
        {
            LaunchRecord const& r = all.back();
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
    clearTracked();
    return status;
}

} // namespace simt

/* Test hooks of every driver: the next run starts with error e pending, as TensorRT or the application
 * may leave one; after the run, what cudaPeekAtLastError reports (a launcher must leave e there). */
SIMT_DRIVER_API void simt_emu_set_pending_error(int32_t e)
{
    simt::pendingAtNextRun() = static_cast<cudaError_t>(e);
}

SIMT_DRIVER_API int32_t simt_emu_peek_last_error()
{
    return static_cast<int32_t>(cudaPeekAtLastError());
}

/* Memory-traffic counters (spp_deploy.native.traffic): on != 0 makes the following runs count their
 * launch's global loads and stores; after a run, its last launch's counters into *out. */
SIMT_DRIVER_API void simt_emu_count_traffic(int32_t on)
{
    simt::countTrafficInRuns() = on != 0;
}

SIMT_DRIVER_API void simt_emu_traffic(simt::TrafficCounters* out)
{
    *out = simt::traffic();
}

/* Shared-memory bank conflicts (spp_deploy.native.traffic.last_bank_conflicts): after a counted run,
 * its last launch's dynamic shared-memory counters into *out. */
SIMT_DRIVER_API void simt_emu_shared_traffic(simt::SharedCounters* out)
{
    *out = simt::sharedTraffic();
}

#endif // SIMT_DRIVER_H
