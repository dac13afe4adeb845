// Enough of CUDA's device side to run scratchae's kernels on the host (tests/cuda_host.py).
//
// A launch runs the grid's blocks one after another. A block's threads are fibers
// (ucontext) on the calling thread: each runs until it reaches __syncthreads() or returns,
// and the block goes past a barrier once every thread has reached it. __shared__ variables
// are statics, shared by the block that runs (blocks never run at the same time).
// A block whose threads do not all reach the same barriers fails the launch (CUDA leaves
// that undefined). Compile as C++20 with -ffp-contract=off (NVRTC's --fmad=false).
#pragma once

#include <math.h>
#include <ucontext.h>

#include <cstddef>
#include <functional>
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
#define __shared__ static

namespace sae_host {

enum Status { OK = 0, DIVERGENT_BARRIER = 1, EMPTY_LAUNCH = 2 };

constexpr std::size_t STACK_BYTES = 64 * 1024;

struct Fiber {
    ucontext_t context;
    std::vector<char> stack = std::vector<char>(STACK_BYTES);
    uint3 index{};
    bool done = false;
};

inline std::vector<Fiber> fibers;  // kept between launches, so the stacks are allocated once
inline ucontext_t scheduler;
inline Fiber* current = nullptr;
inline std::function<void()> body;

inline void fiber_entry() {
    body();
    current->done = true;  // returning resumes the scheduler (uc_link)
}

inline void barrier() {
    swapcontext(&current->context, &scheduler);
}

// Runs one block's threads (fibers[0:count]) to their ends, phase by phase between barriers.
inline Status run_block(std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
        Fiber& f = fibers[i];
        getcontext(&f.context);
        f.context.uc_stack.ss_sp = f.stack.data();
        f.context.uc_stack.ss_size = f.stack.size();
        f.context.uc_link = &scheduler;
        f.done = false;
        makecontext(&f.context, fiber_entry, 0);
    }
    for (;;) {
        std::size_t waiting = 0, finished = 0;
        for (std::size_t i = 0; i < count; ++i) {
            Fiber& f = fibers[i];
            if (f.done) {
                ++finished;
                continue;
            }
            current = &f;
            threadIdx = f.index;
            swapcontext(&scheduler, &f.context);
            if (f.done) {
                ++finished;
            } else {
                ++waiting;
            }
        }
        if (waiting == 0) return OK;
        if (finished != 0) return DIVERGENT_BARRIER;
    }
}

template <class... A, std::size_t... I>
Status launch(void (*kernel)(A...), dim3 grid, dim3 block, void** params, std::index_sequence<I...>) {
    if (grid.x * grid.y * grid.z == 0 || block.x * block.y * block.z == 0) return EMPTY_LAUNCH;
    body = [&] { kernel(*static_cast<std::remove_reference_t<A>*>(params[I])...); };
    gridDim = grid;
    blockDim = block;
    const std::size_t count = std::size_t(block.x) * block.y * block.z;
    if (fibers.size() < count) fibers.resize(count);
    std::size_t t = 0;
    for (unsigned z = 0; z < block.z; ++z)
        for (unsigned y = 0; y < block.y; ++y)
            for (unsigned x = 0; x < block.x; ++x) fibers[t++].index = {x, y, z};
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                blockIdx = {x, y, z};
                Status status = run_block(count);
                if (status != OK) return status;
            }
    return OK;
}

template <class... A>
int launch(void (*kernel)(A...), unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
           void** params) {
    return launch(kernel, dim3(gx, gy, gz), dim3(bx, by, bz), params, std::index_sequence_for<A...>{});
}

enum Kind { POINTER = 0, INTEGER = 1, FLOATING = 2, BOOLEAN = 3 };

template <class A>
constexpr int kind_of() {
    if constexpr (std::is_pointer_v<A>) return POINTER;
    if constexpr (std::is_same_v<A, bool>) return BOOLEAN;
    if constexpr (std::is_floating_point_v<A>) return FLOATING;
    return INTEGER;
}

// kinds[i], sizes[i]: parameter i's Kind and sizeof; returns the parameter count (at most 32).
template <class... A>
int parameters(void (*)(A...), int* kinds, int* sizes) {
    int i = 0;
    ((kinds[i] = kind_of<A>(), sizes[i] = static_cast<int>(sizeof(A)), ++i), ...);
    return i;
}

}  // namespace sae_host

inline void __syncthreads() { sae_host::barrier(); }
