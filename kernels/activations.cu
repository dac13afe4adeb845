// The dense layer's elementwise work around the matrix products (cuBLAS does those).
#include "common.cu"

// Column tile of act_backward: SAE_TILE_X columns by SAE_TILE_Y row lanes per block.
#define SAE_TILE_X 32
#define SAE_TILE_Y 16

// z (size = rows * d, row-major) <- f(z + b) in place; b: (d,), read when has_bias.
extern "C" __global__ void bias_act_forward(sae_t* z, const sae_t* b, long long size, int d, int has_bias, int code,
                                            sae_t p) {
    SAE_GRID_LOOP(i, size) {
        sae_t x = z[i];
        if (has_bias) x += b[i % d];
        z[i] = sae_act_forward(x, code, p);
    }
}

// g (rows, d) <- gy * f'(x) from y; gb (d,) <- column sums of g when has_gb.
// Block (SAE_TILE_X, SAE_TILE_Y), grid (ceil(d / SAE_TILE_X)): each block owns SAE_TILE_X
// columns and all rows, so the column sums need no atomics and are deterministic.
extern "C" __global__ void act_backward(const sae_t* gy, const sae_t* y, sae_t* g, sae_t* gb, long long rows, int d,
                                        int code, sae_t p, int has_gb) {
    __shared__ double part[SAE_TILE_Y][SAE_TILE_X];
    const int j = blockIdx.x * SAE_TILE_X + threadIdx.x;
    double acc = 0;
    if (j < d) {
        for (long long r = threadIdx.y; r < rows; r += SAE_TILE_Y) {
            const long long k = r * d + j;
            const sae_t v = sae_act_grad(gy[k], y[k], code, p);
            g[k] = v;
            acc += v;
        }
    }
    part[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    for (int s = SAE_TILE_Y / 2; s > 0; s >>= 1) {
        if (threadIdx.y < s) part[threadIdx.y][threadIdx.x] += part[threadIdx.y + s][threadIdx.x];
        __syncthreads();
    }
    if (has_gb && threadIdx.y == 0 && j < d) gb[j] = (sae_t)part[0][threadIdx.x];
}
