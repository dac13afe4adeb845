// Enough of CUDA's device side to run scratchae's kernels on the host (tests/cuda_host.py).
//
// A launch runs the grid's blocks one after another, in ascending order on even launches and
// descending order on odd ones. A block's threads are fibers (ucontext) on the calling thread:
// each runs until it reaches __syncthreads() or returns, and the block goes past a barrier once
// every thread has reached it; odd-numbered blocks run their threads in reverse order, so a
// missing barrier shows whichever thread writes first. __shared__ variables are statics in one
// section, filled with 0xff bytes (NaN, -1) at the start of every block, as a GPU leaves shared
// memory undefined. A launch fails when the threads of a block wait at different barriers, or
// some wait while others have returned (CUDA leaves that undefined), and when a dimension
// breaks CUDA's limits. Compile as C++17 with -ffp-contract=off (NVRTC's --fmad=false).
#pragma once

#include <math.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

struct uint3 {
    unsigned x, y, z;
};

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

static uint3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static __attribute__((section("sae_shared")))
#define __syncthreads() sae_host::barrier(__COUNTER__)  // a number per call site

extern "C" char __start_sae_shared[] __attribute__((weak));  // set by the linker when a kernel has __shared__
extern "C" char __stop_sae_shared[] __attribute__((weak));

namespace sae_host {

enum Status { OK = 0, DIVERGENT_BARRIER = 1, BAD_DIMENSIONS = 2, EXCEPTION = 3 };

constexpr std::size_t STACK_BYTES = 256 * 1024;  // per thread, with a guard page below it
constexpr unsigned MAX_THREADS = 1024, MAX_BLOCK_Z = 64, MAX_GRID_YZ = 65535;

// One thread's stack, mapped with a PROT_NONE page below it: an overflow faults at once.
class Stack {
  public:
    Stack() {
        const std::size_t page = sysconf(_SC_PAGESIZE);
        void* base = mmap(nullptr, STACK_BYTES + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED || mprotect(base, page, PROT_NONE) != 0) throw std::bad_alloc();
        base_ = static_cast<char*>(base);
        top_ = base_ + page;
    }
    Stack(const Stack&) = delete;
    Stack& operator=(const Stack&) = delete;
    ~Stack() { munmap(base_, top_ - base_ + STACK_BYTES); }
    char* data() const { return top_; }

  private:
    char* base_;
    char* top_;
};

struct Fiber {
    ucontext_t context;
    Stack stack;
    uint3 index{};
    int site = 0;  // the call site of the barrier it waits at
    bool done = false;
};

inline std::vector<std::unique_ptr<Fiber>> fibers;  // kept between launches: stacks are mapped once
inline ucontext_t scheduler;
inline Fiber* current = nullptr;
inline std::function<void()> body;
inline unsigned long launches = 0;

inline void fiber_entry() {
    body();
    current->done = true;  // returning resumes the scheduler (uc_link)
}

inline void barrier(int site) {
    current->site = site;
    swapcontext(&current->context, &scheduler);
}

// Runs one block's threads (fibers[0:count]) to their ends, phase by phase between barriers.
inline Status run_block(std::size_t count, bool reverse) {
    if (__start_sae_shared != nullptr) std::memset(__start_sae_shared, 0xff, __stop_sae_shared - __start_sae_shared);
    for (std::size_t i = 0; i < count; ++i) {
        Fiber& f = *fibers[i];
        getcontext(&f.context);
        f.context.uc_stack.ss_sp = f.stack.data();
        f.context.uc_stack.ss_size = STACK_BYTES;
        f.context.uc_link = &scheduler;
        f.done = false;
        makecontext(&f.context, fiber_entry, 0);
    }
    for (;;) {
        std::size_t waiting = 0, finished = 0;
        int site = 0;
        bool one_site = true;
        for (std::size_t k = 0; k < count; ++k) {
            Fiber& f = *fibers[reverse ? count - 1 - k : k];
            if (!f.done) {
                current = &f;
                threadIdx = f.index;
                swapcontext(&scheduler, &f.context);
            }
            if (f.done) {
                ++finished;
                continue;
            }
            one_site = one_site && (waiting == 0 || f.site == site);
            site = f.site;
            ++waiting;
        }
        if (waiting == 0) return OK;
        if (finished != 0 || !one_site) return DIVERGENT_BARRIER;
    }
}

inline bool valid(dim3 grid, dim3 block) {
    const unsigned long long threads = 1ull * block.x * block.y * block.z;
    return grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.y <= MAX_GRID_YZ && grid.z <= MAX_GRID_YZ &&
           threads >= 1 && threads <= MAX_THREADS && block.z <= MAX_BLOCK_Z;
}

template <class... A, std::size_t... I>
Status launch(void (*kernel)(A...), dim3 grid, dim3 block, void** params, std::index_sequence<I...>) {
    if (!valid(grid, block)) return BAD_DIMENSIONS;
    body = [&] { kernel(*static_cast<A*>(params[I])...); };
    gridDim = grid;
    blockDim = block;
    const std::size_t count = std::size_t(block.x) * block.y * block.z;
    while (fibers.size() < count) fibers.push_back(std::make_unique<Fiber>());
    std::size_t t = 0;
    for (unsigned z = 0; z < block.z; ++z)
        for (unsigned y = 0; y < block.y; ++y)
            for (unsigned x = 0; x < block.x; ++x) fibers[t++]->index = {x, y, z};
    const std::size_t blocks = std::size_t(grid.x) * grid.y * grid.z;
    const bool descending = launches++ % 2 == 1;
    for (std::size_t n = 0; n < blocks; ++n) {
        const std::size_t b = descending ? blocks - 1 - n : n;
        blockIdx = {unsigned(b % grid.x), unsigned(b / grid.x % grid.y), unsigned(b / grid.x / grid.y)};
        const Status status = run_block(count, b % 2 == 1);
        if (status != OK) return status;
    }
    return OK;
}

template <class... A>
int launch(void (*kernel)(A...), unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
           void** params) {
    try {
        return launch(kernel, dim3(gx, gy, gz), dim3(bx, by, bz), params, std::index_sequence_for<A...>{});
    } catch (const std::exception&) {
        return EXCEPTION;
    }
}

enum Kind { POINTER = 0, INTEGER = 1, FLOATING = 2, BOOLEAN = 3 };

template <class A>
constexpr int kind_of() {
    if constexpr (std::is_pointer_v<A>) return POINTER;
    if constexpr (std::is_same_v<std::remove_cv_t<A>, bool>) return BOOLEAN;
    if constexpr (std::is_floating_point_v<A>) return FLOATING;
    return INTEGER;
}

constexpr int MAX_PARAMETERS = 64;

// For parameter i: kinds[i] and sizes[i] (its Kind and sizeof), and for a pointer the Kind and
// sizeof of what it points to in pointee_kinds[i], pointee_sizes[i]. Returns the parameter count.
template <class... A>
int parameters(void (*)(A...), int* kinds, int* sizes, int* pointee_kinds, int* pointee_sizes) {
    static_assert(sizeof...(A) <= MAX_PARAMETERS, "a kernel with more parameters than cuda_host.py reads");
    int i = 0;
    ((kinds[i] = kind_of<A>(), sizes[i] = int(sizeof(A)),
      pointee_kinds[i] = kind_of<std::remove_pointer_t<A>>(), pointee_sizes[i] = int(sizeof(std::remove_pointer_t<A>)),
      ++i),
     ...);
    return i;
}

}  // namespace sae_host
