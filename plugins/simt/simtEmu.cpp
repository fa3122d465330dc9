/*
 * The SIMT emulator's scheduler (see simtEmu.h): cooperative fibers (ucontext), one per CUDA
 * thread of the running block, and the few CUDA runtime calls a launcher makes after a launch.
 */
#include "simtEmu.h"

#include <ucontext.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <tuple>

namespace simt
{
namespace
{

using detail::WarpOp;

constexpr size_t kSTACK_BYTES = 256 * 1024;
constexpr size_t kGUARD_BYTES = 64;
constexpr unsigned char kPOISON = 0xFF;
constexpr uint64_t kSTACK_CANARY = 0x5EB1A5C0FFEE5EB1ULL;

enum class State
{
    kRUNNABLE,
    kBLOCK_BARRIER,
    kWARP_OP,
    kDONE,
};

struct Fiber
{
    ucontext_t context;
    char* stack = nullptr;
    detail::ThreadContext tc{};
    State state = State::kRUNNABLE;
    // Pending warp operation.
    WarpOp op = WarpOp::kSYNC;
    unsigned mask = 0;
    uint64_t bits = 0;
    int arg = 0;
    int width = kWarpSize;
    char const* opName = "";
    uint64_t result = 0;
    // Memory-traffic grouping: barriers/warp operations passed, global accesses since the last one.
    uint32_t epoch = 0;
    uint32_t seq = 0;
    // Shared-memory bank conflicts: the epoch sharedSeq counts in (own index, global counters unchanged).
    uint32_t sharedEpoch = 0;
    uint32_t sharedSeq = 0;
};

struct Block
{
    ucontext_t scheduler;
    std::vector<Fiber> fibers;
    std::function<void()> const* body = nullptr;
    unsigned char* shared = nullptr;
    size_t sharedBytes = 0;
    bool aborted = false;
};

struct Tracked
{
    uintptr_t begin;
    uintptr_t end;
};

//! One lane's global access (countTraffic).
struct Access
{
    uint32_t warp;
    uint32_t epoch;
    uint32_t seq;
    uint64_t addr;
    uint32_t bytes;
};

//! The traffic of the running launch: per-block accesses, folded into counters after each block.
struct Traffic
{
    TrafficCounters counters{};
    std::vector<Access> accesses[2]; //!< [load, store] of the running block
    std::vector<uint64_t> sectors[2]; //!< sectors touched so far (sorted and made unique at the end)
};

//! The shared-memory traffic of the running launch: the block's accesses (offsets into its dynamic
//! shared memory), folded into counters after each block.
struct SharedTraffic
{
    SharedCounters counters{};
    std::vector<Access> accesses;
};

struct State_
{
    Options options;
    std::string fault;
    std::vector<LaunchRecord> launches;
    std::vector<Tracked> tracked;
    cudaError_t lastError = cudaSuccess;
    std::vector<std::unique_ptr<char[]>> stacks; //!< reused between blocks
    Traffic traffic;
    SharedTraffic shared;
};

State_& state()
{
    static thread_local State_ s;
    return s;
}

thread_local Block* tBlock = nullptr;
thread_local Fiber* tFiber = nullptr;

std::string where(Fiber const& f)
{
    char buf[160];
    std::snprintf(buf, sizeof(buf), " [block (%u,%u,%u) thread (%u,%u,%u)]", f.tc.block.x, f.tc.block.y,
        f.tc.block.z, f.tc.thread.x, f.tc.thread.y, f.tc.thread.z);
    return buf;
}

void recordFault(std::string const& what)
{
    if (state().fault.empty())
    {
        state().fault = what;
    }
}

void fiberMain()
{
    (*tBlock->body)();
    tFiber->state = State::kDONE;
    swapcontext(&tFiber->context, &tBlock->scheduler);
}

//! Suspend the running fiber (back to the scheduler).
void yieldFiber()
{
    Fiber* const f = tFiber;
    swapcontext(&f->context, &tBlock->scheduler);
}

int linearLane(Fiber const& f, dim3 const& bd)
{
    return static_cast<int>((f.tc.thread.z * bd.y + f.tc.thread.y) * bd.x + f.tc.thread.x);
}

char const* stateName(State s)
{
    switch (s)
    {
    case State::kRUNNABLE: return "running";
    case State::kBLOCK_BARRIER: return "__syncthreads";
    case State::kWARP_OP: return "a warp operation";
    case State::kDONE: return "exited";
    }
    return "?";
}

//! Release every warp operation whose named lanes have all arrived; false (and a fault) on misuse.
bool releaseWarps(Block& b, bool& released)
{
    size_t const n = b.fibers.size();
    for (size_t i = 0; i < n; ++i)
    {
        Fiber& f = b.fibers[i];
        if (f.state != State::kWARP_OP)
        {
            continue;
        }
        size_t const warpBase = i / kWarpSize * kWarpSize;
        std::vector<Fiber*> lanes(kWarpSize, nullptr);
        bool ready = true;
        for (int l = 0; l < kWarpSize; ++l)
        {
            if (!(f.mask & (1U << l)))
            {
                continue;
            }
            size_t const j = warpBase + static_cast<size_t>(l);
            if (j >= n)
            {
                recordFault(std::string(f.opName) + " mask names lane " + std::to_string(l) + ", which does not exist"
                    + where(f));
                return false;
            }
            Fiber& g = b.fibers[j];
            if (g.state == State::kRUNNABLE)
            {
                ready = false;
                break;
            }
            if (g.state != State::kWARP_OP || g.op != f.op || g.mask != f.mask || g.width != f.width)
            {
                recordFault(std::string(f.opName) + " with mask 0x" + [&] {
                    char m[16];
                    std::snprintf(m, sizeof(m), "%08x", f.mask);
                    return std::string(m);
                }() + " but lane " + std::to_string(l) + " is at "
                    + (g.state == State::kWARP_OP ? std::string(g.opName) + " (other mask/width)"
                                                  : std::string(stateName(g.state)))
                    + where(f));
                return false;
            }
            lanes[l] = &g;
        }
        if (!ready)
        {
            continue;
        }
        int const w = f.width;
        for (int l = 0; l < kWarpSize; ++l)
        {
            Fiber* const g = lanes[l];
            if (g == nullptr)
            {
                continue;
            }
            int const segment = l & ~(w - 1);
            int src = l;
            switch (f.op)
            {
            case WarpOp::kSHFL: src = segment + (g->arg & (w - 1)); break;
            case WarpOp::kSHFL_UP: src = (l - segment) >= g->arg ? l - g->arg : l; break;
            case WarpOp::kSHFL_DOWN: src = (l - segment) + g->arg < w ? l + g->arg : l; break;
            case WarpOp::kSHFL_XOR: src = (l ^ g->arg) < segment + w ? (l ^ g->arg) : l; break;
            case WarpOp::kBALLOT:
            case WarpOp::kSYNC: break;
            }
            if (f.op == WarpOp::kBALLOT)
            {
                uint64_t ballot = 0;
                for (int k = 0; k < kWarpSize; ++k)
                {
                    if (lanes[k] != nullptr && lanes[k]->bits != 0)
                    {
                        ballot |= 1ULL << k;
                    }
                }
                g->result = ballot;
            }
            else if (f.op == WarpOp::kSYNC)
            {
                g->result = 0;
            }
            else
            {
                if (src < 0 || src >= kWarpSize || lanes[src] == nullptr)
                {
                    recordFault(std::string(f.opName) + ": lane " + std::to_string(l) + " reads lane "
                        + std::to_string(src) + ", which is not in the mask" + where(*g));
                    return false;
                }
                g->result = lanes[src]->bits;
            }
        }
        for (Fiber* g : lanes)
        {
            if (g != nullptr)
            {
                g->state = State::kRUNNABLE;
            }
        }
        released = true;
    }
    return true;
}

constexpr uint64_t kSECTOR = 32;

//! Sort the block's accesses and call visit(first, last) on each request's run of them (same warp,
//! epoch and program-order index; sorted by address inside); the accesses are consumed.
template <typename Visit>
void forEachRequest(std::vector<Access>& acc, Visit visit)
{
    std::sort(acc.begin(), acc.end(), [](Access const& a, Access const& b) {
        return std::tie(a.warp, a.epoch, a.seq, a.addr) < std::tie(b.warp, b.epoch, b.seq, b.addr);
    });
    for (size_t i = 0; i < acc.size();)
    {
        size_t j = i;
        while (j < acc.size() && acc[j].warp == acc[i].warp && acc[j].epoch == acc[i].epoch && acc[j].seq == acc[i].seq)
        {
            ++j;
        }
        visit(acc.data() + i, acc.data() + j);
        i = j;
    }
    acc.clear();
}

//! The distinct bytes a request's accesses (sorted by address) ask for; each unit (sector, bank word)
//! of `unit` bytes they touch is appended to units (sorted, unique).
uint64_t requestUnits(Access const* first, Access const* last, uint64_t unit, std::vector<uint64_t>& units)
{
    uint64_t bytes = 0;
    uint64_t end = 0;
    units.clear();
    for (Access const* a = first; a != last; ++a)
    {
        uint64_t const e = a->addr + a->bytes;
        bytes += e > end ? e - std::max(a->addr, end) : 0;
        end = std::max(end, e);
        for (uint64_t u = a->addr / unit; u <= (e - 1) / unit; ++u)
        {
            units.push_back(u);
        }
    }
    std::sort(units.begin(), units.end());
    units.erase(std::unique(units.begin(), units.end()), units.end());
    return bytes;
}

//! Fold the block's accesses of one kind into requests (same warp, epoch and program-order index).
void foldRequests(std::vector<Access>& acc, uint64_t& requests, uint64_t& sectors, uint64_t& bytes,
    std::vector<uint64_t>& touched)
{
    std::vector<uint64_t> secs;
    std::vector<uint64_t> blockSecs;
    forEachRequest(acc, [&](Access const* first, Access const* last) {
        bytes += requestUnits(first, last, kSECTOR, secs);
        ++requests;
        sectors += secs.size();
        blockSecs.insert(blockSecs.end(), secs.begin(), secs.end());
    });
    std::sort(blockSecs.begin(), blockSecs.end());
    blockSecs.erase(std::unique(blockSecs.begin(), blockSecs.end()), blockSecs.end());
    touched.insert(touched.end(), blockSecs.begin(), blockSecs.end()); // made unique by traffic()
}

//! Sort and dedupe the sectors touched (once per launch, when the counters are read).
uint64_t uniqueCount(std::vector<uint64_t>& touched)
{
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    return touched.size();
}

void foldBlockTraffic()
{
    Traffic& t = state().traffic;
    TrafficCounters& c = t.counters;
    foldRequests(t.accesses[0], c.loadRequests, c.loadSectors, c.loadBytes, t.sectors[0]);
    foldRequests(t.accesses[1], c.storeRequests, c.storeSectors, c.storeBytes, t.sectors[1]);
}

// ---- shared-memory bank conflicts ----------------------------------------------------------------

constexpr uint64_t kBANKS = 32;
constexpr uint64_t kBANK_WORD = 4;

//! Fold the block's shared-memory accesses into requests (grouped as the global ones) and count each
//! request's wavefronts: the most distinct 4-byte words one bank serves.
void foldSharedBlock()
{
    SharedCounters& c = state().shared.counters;
    std::vector<uint64_t> words;
    forEachRequest(state().shared.accesses, [&](Access const* first, Access const* last) {
        c.bytes += requestUnits(first, last, kBANK_WORD, words);
        uint64_t perBank[kBANKS] = {};
        uint64_t passes = 0;
        for (uint64_t w : words)
        {
            passes = std::max(passes, ++perBank[w % kBANKS]);
        }
        ++c.requests;
        c.wavefronts += passes;
        c.bankConflicts += passes - (words.size() + kBANKS - 1) / kBANKS;
    });
}

// ---- end of shared-memory bank conflicts ---------------------------------------------------------

void runBlock(Block& b, dim3 const& blockShape, std::mt19937_64& rng)
{
    size_t const n = b.fibers.size();
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i)
    {
        order[i] = i;
    }
    Schedule const policy = state().options.schedule;
    if (policy == Schedule::kREVERSE)
    {
        std::reverse(order.begin(), order.end());
    }
    for (;;)
    {
        if (policy == Schedule::kSHUFFLED)
        {
            std::shuffle(order.begin(), order.end(), rng);
        }
        bool ran = false;
        for (size_t i : order)
        {
            Fiber& f = b.fibers[i];
            if (f.state != State::kRUNNABLE)
            {
                continue;
            }
            tFiber = &f;
            swapcontext(&b.scheduler, &f.context);
            tFiber = nullptr;
            ran = true;
            if (b.aborted)
            {
                return;
            }
        }
        if (ran)
        {
            continue;
        }
        size_t done = 0, atBarrier = 0;
        for (Fiber const& f : b.fibers)
        {
            done += f.state == State::kDONE;
            atBarrier += f.state == State::kBLOCK_BARRIER;
        }
        if (done == n)
        {
            return;
        }
        bool released = false;
        if (!releaseWarps(b, released))
        {
            return;
        }
        if (released)
        {
            continue;
        }
        if (atBarrier == n)
        {
            for (Fiber& f : b.fibers)
            {
                f.state = State::kRUNNABLE;
            }
            continue;
        }
        // Nothing can move: a barrier some threads never reach.
        for (Fiber const& f : b.fibers)
        {
            if (f.state == State::kBLOCK_BARRIER)
            {
                for (Fiber const& g : b.fibers)
                {
                    if (g.state != State::kBLOCK_BARRIER)
                    {
                        recordFault("__syncthreads reached by " + std::to_string(atBarrier) + " of " + std::to_string(n)
                            + " threads; thread " + std::to_string(linearLane(g, blockShape)) + " is at "
                            + stateName(g.state) + where(f));
                        return;
                    }
                }
            }
        }
        for (Fiber const& f : b.fibers)
        {
            if (f.state == State::kWARP_OP)
            {
                recordFault(std::string(f.opName) + " never completed (deadlock)" + where(f));
                return;
            }
        }
        recordFault("emulator deadlock");
        return;
    }
}

//! Fresh context at fiberMain on the fiber's stack (out of line: getcontext returns twice).
__attribute__((noinline)) void startFiber(Fiber& f)
{
    std::memcpy(f.stack, &kSTACK_CANARY, sizeof(kSTACK_CANARY));
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = f.stack;
    f.context.uc_stack.ss_size = kSTACK_BYTES;
    f.context.uc_link = nullptr;
    makecontext(&f.context, fiberMain, 0);
}

bool validLaunch(dim3 grid, dim3 block, size_t sharedBytes, std::string& why)
{
    uint64_t const threads = static_cast<uint64_t>(block.x) * block.y * block.z;
    if (threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64)
    {
        why = "block (" + std::to_string(block.x) + "," + std::to_string(block.y) + "," + std::to_string(block.z)
            + ") is not 1..1024 threads within (1024, 1024, 64)";
        return false;
    }
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7FFFFFFFU || grid.y > 65535 || grid.z > 65535)
    {
        why = "grid (" + std::to_string(grid.x) + "," + std::to_string(grid.y) + "," + std::to_string(grid.z)
            + ") outside (1..2^31-1, 1..65535, 1..65535)";
        return false;
    }
    if (sharedBytes > 48 * 1024)
    {
        why = "dynamic shared memory " + std::to_string(sharedBytes)
            + " bytes > 48 KiB (needs cudaFuncAttributeMaxDynamicSharedMemorySize)";
        return false;
    }
    return true;
}

} // namespace

void setOptions(Options const& o)
{
    state().options = o;
}

Options const& options()
{
    return state().options;
}

void trackGlobal(void const* p, size_t bytes)
{
    uintptr_t const b = reinterpret_cast<uintptr_t>(p);
    state().tracked.push_back(Tracked{b, b + bytes});
}

void clearTracked()
{
    state().tracked.clear();
}

std::string const& fault()
{
    return state().fault;
}

std::vector<LaunchRecord> const& launches()
{
    return state().launches;
}

TrafficCounters const& traffic()
{
    Traffic& t = state().traffic;
    t.counters.uniqueSectorsRead = uniqueCount(t.sectors[0]);
    t.counters.uniqueSectorsWritten = uniqueCount(t.sectors[1]);
    t.counters.fp64Ops = detail::tFp64Ops;
    return t.counters;
}

SharedCounters const& sharedTraffic()
{
    return state().shared.counters;
}

void resetState()
{
    state().shared = SharedTraffic{};
    state().fault.clear();
    state().launches.clear();
    state().tracked.clear();
    state().lastError = cudaSuccess;
    state().traffic = Traffic{};
    detail::tFp64Ops = 0;
}

void setLastError(cudaError_t e)
{
    state().lastError = e;
}

namespace detail
{

thread_local bool tCountTraffic = false;
thread_local uint64_t tFp64Ops = 0;

void recordAccess(void const* p, size_t bytes, bool store)
{
    Fiber* const f = (current(), tFiber);
    uint32_t const warp = static_cast<uint32_t>(linearLane(*f, f->tc.blockDimV) / kWarpSize);
    state().traffic.accesses[store ? 1 : 0].push_back(
        Access{warp, f->epoch, f->seq++, reinterpret_cast<uint64_t>(p), static_cast<uint32_t>(bytes)});
}

void recordShared(void const* p, size_t bytes)
{
    Fiber* const f = (current(), tFiber);
    if (f->sharedEpoch != f->epoch)
    {
        f->sharedEpoch = f->epoch;
        f->sharedSeq = 0;
    }
    uint32_t const warp = static_cast<uint32_t>(linearLane(*f, f->tc.blockDimV) / kWarpSize);
    uint64_t const offset = static_cast<uint64_t>(static_cast<unsigned char const*>(p) - tBlock->shared);
    state().shared.accesses.push_back(Access{warp, f->epoch, f->sharedSeq++, offset, static_cast<uint32_t>(bytes)});
}

ThreadContext const& current()
{
    if (tFiber == nullptr)
    {
        std::fprintf(stderr, "simt: a CUDA built-in variable was read outside a kernel\n");
        std::abort();
    }
    return tFiber->tc;
}

void* dynamicSharedBase()
{
    return current(), tBlock->shared;
}

size_t dynamicSharedBytes()
{
    return current(), tBlock->sharedBytes;
}

void fail(std::string const& what)
{
    Fiber* const f = tFiber;
    recordFault(what + (f ? where(*f) : std::string()));
    if (f == nullptr)
    {
        std::fprintf(stderr, "simt: %s\n", what.c_str());
        std::abort();
    }
    tBlock->aborted = true;
    for (;;)
    {
        yieldFiber(); // never resumed: the block is abandoned
    }
}

void syncThreads()
{
    current();
    ++tFiber->epoch;
    tFiber->seq = 0;
    tFiber->state = State::kBLOCK_BARRIER;
    yieldFiber();
}

uint64_t warpOp(WarpOp op, unsigned mask, uint64_t bits, int arg, int width, char const* name)
{
    Fiber* const f = (current(), tFiber);
    int const lane = linearLane(*f, f->tc.blockDimV) % kWarpSize;
    if (!(mask & (1U << lane)))
    {
        fail(std::string(name) + ": the calling lane " + std::to_string(lane) + " is not in its mask");
    }
    if (width < 1 || width > kWarpSize || (width & (width - 1)) != 0)
    {
        fail(std::string(name) + ": width " + std::to_string(width) + " is not a power of 2 in 1..32");
    }
    f->op = op;
    f->mask = mask;
    f->bits = bits;
    f->arg = arg;
    f->width = width;
    f->opName = name;
    ++f->epoch;
    f->seq = 0;
    f->state = State::kWARP_OP;
    yieldFiber();
    return f->result;
}

void checkLoad(void const* p, size_t bytes, size_t align)
{
    uintptr_t const a = reinterpret_cast<uintptr_t>(p);
    if (a % align != 0)
    {
        fail("__ldg of a misaligned address");
    }
    auto const& tracked = state().tracked;
    if (tracked.empty())
    {
        return;
    }
    for (Tracked const& t : tracked)
    {
        if (a >= t.begin && a + bytes <= t.end)
        {
            return;
        }
    }
    char buf[96];
    std::snprintf(buf, sizeof(buf), "__ldg reads %zu bytes at %p, outside every tracked buffer", bytes, p);
    fail(buf);
}

cudaError_t runGrid(dim3 grid, dim3 block, size_t sharedBytes, std::function<void()> const& threadBody)
{
    State_& s = state();
    std::string why;
    if (!validLaunch(grid, block, sharedBytes, why))
    {
        s.lastError = cudaErrorInvalidConfiguration; // recorded, as the runtime records a failed launch
        recordFault("launch refused: " + why);
        return cudaErrorInvalidConfiguration;
    }
    uint32_t const gx = s.options.clampGridX != 0 ? std::min(grid.x, s.options.clampGridX) : grid.x;
    s.launches.push_back(LaunchRecord{grid, block, sharedBytes, gx});
    tCountTraffic = s.options.countTraffic;
    struct CountingOff
    {
        ~CountingOff()
        {
            tCountTraffic = false;
        }
    } const countingOff;
    size_t const threads = static_cast<size_t>(block.x) * block.y * block.z;
    while (s.stacks.size() < threads)
    {
        s.stacks.emplace_back(new char[kSTACK_BYTES]);
    }
    std::vector<unsigned char> shared(sharedBytes + kGUARD_BYTES);
    dim3 const runGridDim(gx, grid.y, grid.z);
    std::mt19937_64 rng(s.options.seed);
    for (uint32_t bz = 0; bz < grid.z; ++bz)
    {
        for (uint32_t by = 0; by < grid.y; ++by)
        {
            for (uint32_t bx = 0; bx < gx; ++bx)
            {
                std::fill(shared.begin(), shared.end(), kPOISON);
                Block b;
                b.body = &threadBody;
                b.shared = shared.data();
                b.sharedBytes = sharedBytes;
                b.fibers.resize(threads);
                for (size_t t = 0; t < threads; ++t)
                {
                    Fiber& f = b.fibers[t];
                    f.tc.thread = make_uint3(static_cast<unsigned>(t % block.x),
                        static_cast<unsigned>(t / block.x % block.y), static_cast<unsigned>(t / (block.x * block.y)));
                    f.tc.block = make_uint3(bx, by, bz);
                    f.tc.blockDimV = block;
                    f.tc.gridDimV = runGridDim;
                    f.stack = s.stacks[t].get();
                    startFiber(f);
                }
                tBlock = &b;
                runBlock(b, block, rng);
                tBlock = nullptr;
                if (tCountTraffic)
                {
                    foldBlockTraffic();
                    foldSharedBlock();
                }
                for (Fiber const& f : b.fibers)
                {
                    if (std::memcmp(f.stack, &kSTACK_CANARY, sizeof(kSTACK_CANARY)) != 0)
                    {
                        recordFault("fiber stack overflow" + where(f));
                        return cudaSuccess; // a kernel fault is not a launch error (fault())
                    }
                }
                if (b.aborted || !s.fault.empty())
                {
                    return cudaSuccess; // a kernel fault is not a launch error (fault())
                }
                for (size_t i = sharedBytes; i < shared.size(); ++i)
                {
                    if (shared[i] != kPOISON)
                    {
                        recordFault("a write past the end of dynamic shared memory (" + std::to_string(sharedBytes)
                            + " bytes) in block (" + std::to_string(bx) + "," + std::to_string(by) + ","
                            + std::to_string(bz) + ")");
                        return cudaSuccess; // a kernel fault is not a launch error (fault())
                    }
                }
            }
        }
    }
    return cudaSuccess;
}

} // namespace detail
} // namespace simt

// ---- the CUDA runtime calls a launcher makes (no libcudart in an emulation build) -----------------

cudaError_t cudaGetLastError(void)
{
    cudaError_t const e = simt::state().lastError;
    simt::state().lastError = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void)
{
    return simt::state().lastError;
}

char const* cudaGetErrorName(cudaError_t error)
{
    switch (error)
    {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    default: return "cudaError (emulated)";
    }
}

char const* cudaGetErrorString(cudaError_t error)
{
    switch (error)
    {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    default: return "unknown error (emulated runtime)";
    }
}
