// Optimizer steps in place, one pass each (the arithmetic of scratchae.optim).
#include "common.cu"

// g' = g + wd w (when wd != 0); m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2;
// w -= step_size m / (sqrt(v) + eps), the bias corrections folded into step_size and eps by scratchae.optim.Adam.
extern "C" __global__ void adam_update(sae_t* w, const sae_t* g, sae_t* m, sae_t* v, long long size, sae_t step_size,
                                       sae_t beta1, sae_t one_minus_beta1, sae_t beta2, sae_t one_minus_beta2,
                                       sae_t eps, sae_t wd) {
    SAE_GRID_LOOP(i, size) {
        const sae_t gi = wd != 0 ? g[i] + wd * w[i] : g[i];
        const sae_t mi = m[i] * beta1 + one_minus_beta1 * gi;
        const sae_t vi = v[i] * beta2 + one_minus_beta2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        w[i] = w[i] - step_size * mi / (sae_sqrt(vi) + eps);
    }
}

// g' = g + wd w (when wd != 0); v = momentum v + g'; w -= lr (g' + momentum v) if nesterov else lr v.
extern "C" __global__ void momentum_update(sae_t* w, const sae_t* g, sae_t* v, long long size, sae_t lr,
                                           sae_t momentum, int nesterov, sae_t wd) {
    SAE_GRID_LOOP(i, size) {
        const sae_t gi = wd != 0 ? g[i] + wd * w[i] : g[i];
        const sae_t vi = v[i] * momentum + gi;
        v[i] = vi;
        w[i] = nesterov ? w[i] - lr * (gi + momentum * vi) : w[i] - lr * vi;
    }
}
