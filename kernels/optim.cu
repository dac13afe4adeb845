// Optimizer steps in place, one pass each (the arithmetic of scratchae.optim).
//
// One launch updates a group of up to SAE_GROUP parameters: block row blockIdx.y is parameter k,
// whose arrays, size and scalars are the k-th of the SAE_GROUP arguments of each kind (slots past
// the group's end get size 0). SAE_GROUP is scratchae.kernels.args.GROUP.
#include "common.cu"

#define SAE_GROUP 8
static_assert(SAE_GROUP == 8, "SAE_EACH and SAE_PICK spell out 8 slots: change them with SAE_GROUP");
// SAE_GROUP parameters name0 ... name7 of one type.
#define SAE_EACH(type, name) \
    type name##0, type name##1, type name##2, type name##3, type name##4, type name##5, type name##6, type name##7
// The k-th of name0 ... name7.
#define SAE_PICK(name, k)                                                                                     \
    ((k) == 0 ? name##0 : (k) == 1 ? name##1 : (k) == 2 ? name##2 : (k) == 3 ? name##3 : (k) == 4 ? name##4 \
     : (k) == 5 ? name##5 : (k) == 6 ? name##6 : name##7)

// Per parameter k: g' = g + wd w (when wd != 0); m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2;
// w -= step_size m / (sqrt(v) + eps), the bias corrections folded into step_size and eps by scratchae.optim.Adam.
extern "C" __global__ void adam_update(SAE_EACH(sae_t*, w), SAE_EACH(const sae_t*, g), SAE_EACH(sae_t*, m),
                                       SAE_EACH(sae_t*, v), SAE_EACH(long long, size), SAE_EACH(sae_t, step_size),
                                       SAE_EACH(sae_t, eps), sae_t beta1, sae_t one_minus_beta1, sae_t beta2,
                                       sae_t one_minus_beta2, sae_t wd) {
    const unsigned k = blockIdx.y;
    sae_t* const w = SAE_PICK(w, k);
    const sae_t* const g = SAE_PICK(g, k);
    sae_t* const m = SAE_PICK(m, k);
    sae_t* const v = SAE_PICK(v, k);
    const sae_t a = SAE_PICK(step_size, k), e = SAE_PICK(eps, k);
    const long long n = SAE_PICK(size, k);
    SAE_GRID_LOOP(i, n) {
        const sae_t gi = wd != 0 ? g[i] + wd * w[i] : g[i];
        const sae_t mi = m[i] * beta1 + one_minus_beta1 * gi;
        const sae_t vi = v[i] * beta2 + one_minus_beta2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        w[i] = w[i] - a * mi / (sae_sqrt(vi) + e);
    }
}

// Per parameter k: g' = g + wd w (when wd != 0); v = momentum v + g'; w -= lr (g' + momentum v) if nesterov else lr v.
extern "C" __global__ void momentum_update(SAE_EACH(sae_t*, w), SAE_EACH(const sae_t*, g), SAE_EACH(sae_t*, v),
                                           SAE_EACH(long long, size), sae_t lr, sae_t momentum, int nesterov,
                                           sae_t wd) {
    const unsigned k = blockIdx.y;
    sae_t* const w = SAE_PICK(w, k);
    const sae_t* const g = SAE_PICK(g, k);
    sae_t* const v = SAE_PICK(v, k);
    const long long n = SAE_PICK(size, k);
    SAE_GRID_LOOP(i, n) {
        const sae_t gi = wd != 0 ? g[i] + wd * w[i] : g[i];
        const sae_t vi = v[i] * momentum + gi;
        v[i] = vi;
        w[i] = nesterov ? w[i] - lr * (gi + momentum * vi) : w[i] - lr * vi;
    }
}
