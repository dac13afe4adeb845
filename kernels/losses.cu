// Losses in one pass: the unscaled gradient, and per-block partial sums of the loss values
// that sum_partials (common.cu) adds up. Launch with blocks of SAE_BLOCK threads.
#include "common.cu"

// grad <- sigmoid(z) - t; partials[block] <- sum of max(z, 0) - z t + log1p(exp(-|z|)).
extern "C" __global__ void bce_with_logits(const sae_t* z, const sae_t* t, sae_t* grad, double* partials,
                                           long long size) {
    const sae_t zero = 0;
    double acc = 0;
    SAE_GRID_LOOP(i, size) {
        const sae_t x = z[i], ti = t[i], e = sae_exp(-sae_abs(x));
        acc += ((x > zero ? x : zero) - x * ti) + sae_log1p(e);
        grad[i] = sae_sigmoid(x, e) - ti;
    }
    const double total = sae_block_sum(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// grad <- 2 (pred - target); partials[block] <- sum of (pred - target)^2.
extern "C" __global__ void mse(const sae_t* pred, const sae_t* target, sae_t* grad, double* partials, long long size) {
    const sae_t two = 2;
    double acc = 0;
    SAE_GRID_LOOP(i, size) {
        const sae_t diff = pred[i] - target[i];
        acc += diff * diff;
        grad[i] = two * diff;
    }
    const double total = sae_block_sum(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
}
