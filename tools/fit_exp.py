"""Fit the exp(r) polynomials used by the kernels (near-minimax relative error).

exp(r) ~= 1 + c1 r + ... + cd r^d on |r| <= ln(2)/2 (+ a small margin for the
rounding of the range reduction). c0 is fixed to 1 so exp(0) is exact; the fit
is Lawson's iteratively reweighted least squares (converges to the minimax
solution) in mpmath at 40 digits on Chebyshev-distributed points. Prints the
coefficients rounded to the target precision and the approximation error of
the rounded coefficients (before any floating-point evaluation error).

    python tools/fit_exp.py

The AVX-512 float64 kernels use a 16-entry table instead: exp(x) =
2^(k/16) 2^m p(r), |r| <= ln(2)/32, where degree 6 suffices (ExpTable16 in
csrc/kernels/vecmath_common.h; printed last).
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 40


def lawson_exp(degree, half_width, points=160, iters=60):
    rs = [half_width * mp.cos(mp.pi * (j + mp.mpf(1) / 2) / points) for j in range(points)]
    weights = [mp.mpf(1) / points] * points
    coeffs = None
    for _ in range(iters):
        # weighted LS for relative error: (1 + sum c_k r^k)/e^r - 1
        a = mp.matrix(points, degree)
        y = mp.matrix(points, 1)
        for i, r in enumerate(rs):
            sw, er = mp.sqrt(weights[i]), mp.e ** r
            for k in range(degree):
                a[i, k] = sw * r ** (k + 1) / er
            y[i] = sw * (1 - 1 / er)
        sol, _ = mp.qr_solve(a, y)
        coeffs = [sol[k] for k in range(degree)]
        errs = [abs(1 + sum(c * r ** (k + 1) for k, c in enumerate(coeffs)) - mp.e ** r) / mp.e ** r for r in rs]
        total = sum(w * e for w, e in zip(weights, errs))
        weights = [w * e / total for w, e in zip(weights, errs)]
    return coeffs


def max_rel_error(coeffs, half_width, samples=20001):
    worst = mp.mpf(0)
    for j in range(samples):
        r = -half_width + 2 * half_width * j / (samples - 1)
        p = 1 + sum(mp.mpf(c) * r ** (k + 1) for k, c in enumerate(coeffs))
        worst = max(worst, abs(p / mp.e ** r - 1))
    return worst


if __name__ == "__main__":
    hw = mp.log(2) / 2 * (1 + mp.mpf(2) ** -10)
    for name, deg, cast in (("f32", 6, np.float32), ("f64", 11, np.float64)):
        c = lawson_exp(deg, hw)
        rounded = [float(cast(float(ck))) for ck in c]
        print(f"{name}: degree {deg}, max relative error of rounded coefficients "
              f"{mp.nstr(max_rel_error(rounded, hw), 4)}")
        for k, ck in enumerate(rounded, start=1):
            print(f"  c{k} = {ck.hex()}  // {ck!r}")
    # ExpCoeffsMid (csrc/kernels/expsum_fast.h): degree 6 in float64 for the
    # float64-lane sums of float32 data.
    c = lawson_exp(6, hw)
    rounded = [float(ck) for ck in c]
    print(f"f64 mid: degree 6, max relative error of rounded coefficients {mp.nstr(max_rel_error(rounded, hw), 4)}")
    for k, ck in enumerate(rounded, start=1):
        print(f"  c{k} = {ck.hex()}  // {ck!r}")
    hw16 = mp.log(2) / 32 * (1 + mp.mpf(2) ** -10)
    c = lawson_exp(6, hw16)
    rounded = [float(ck) for ck in c]
    print(f"f64 table16: degree 6 on |r| <= ln2/32, max relative error of rounded coefficients "
          f"{mp.nstr(max_rel_error(rounded, hw16), 4)}")
    for k, ck in enumerate(rounded, start=1):
        print(f"  c{k} = {ck.hex()}  // {ck!r}")
    print("  table: " + ", ".join(float(mp.mpf(2) ** (mp.mpf(j) / 16)).hex() for j in range(16)))
