//! Element-wise activations as GGML computes them in f32: SwiGLU
//! (ggml_swiglu: silu(g)·u with silu(x) = x / (1 + e^-x)) and the row softmax
//! of ggml_soft_max_ext without mask (x·scale, minus the row max, e^v rounded
//! to f32 (computed in f64 by `exp` below: GGML's expf is within an ulp of it)
//! summed in f64, times the f32 reciprocal of the sum).
const std = @import("std");
const status = @import("../c_api/status.zig");

const Error = status.Error;

inline fn silu(x: f32) f32 {
    return x / (1.0 + @exp(-x));
}

/// `out[i] = silu(g[i]) * u[i]`; `out` may be `g` or `u`.
pub fn swiglu(g: []const f32, u: []const f32, out: []f32) Error!void {
    if (u.len != g.len) return status.fail(error.LengthMismatch, "swiglu: u has {d} elements, expected {d} as g", .{ u.len, g.len });
    if (out.len != g.len) return status.fail(error.LengthMismatch, "swiglu: out has {d} elements, expected {d} as g", .{ out.len, g.len });
    for (g, u, out) |a, b, *o| o.* = silu(a) * b;
}

/// One row: `x = softmax(x · scale)` in place. Vectorized in a fixed shape
/// (8 lanes, the f64 sum reduced as a tree), so every target gives the same bits.
pub fn softmaxRow(x: []f32, scale: f32) void {
    const F32v = @Vector(softmax_lanes, f32);
    var maxv: F32v = @splat(-std.math.inf(f32));
    var i: usize = 0;
    while (i + softmax_lanes <= x.len) : (i += softmax_lanes) {
        const v = @as(F32v, x[i..][0..softmax_lanes].*) * @as(F32v, @splat(scale));
        x[i..][0..softmax_lanes].* = v;
        maxv = @max(maxv, v);
    }
    var max = @reduce(.Max, maxv);
    for (x[i..]) |*v| {
        v.* *= scale;
        max = @max(max, v.*);
    }
    var sumv: F64v = @splat(0);
    i = 0;
    while (i + softmax_lanes <= x.len) : (i += softmax_lanes) {
        const e: F32v = @floatCast(exp(softmax_lanes, @floatCast(@as(F32v, x[i..][0..softmax_lanes].*) - @as(F32v, @splat(max)))));
        x[i..][0..softmax_lanes].* = e;
        sumv += @as(F64v, @floatCast(e));
    }
    const s4 = @shuffle(f64, sumv, undefined, @Vector(4, i32){ 0, 1, 2, 3 }) + @shuffle(f64, sumv, undefined, @Vector(4, i32){ 4, 5, 6, 7 });
    var sum = (s4[0] + s4[2]) + (s4[1] + s4[3]);
    for (x[i..]) |*v| {
        v.* = @floatCast(exp(1, @splat(v.* - max))[0]);
        sum += v.*;
    }
    const inv: f32 = @floatCast(1.0 / sum);
    i = 0;
    while (i + softmax_lanes <= x.len) : (i += softmax_lanes) {
        const v: F32v = x[i..][0..softmax_lanes].*;
        x[i..][0..softmax_lanes].* = v * @as(F32v, @splat(inv));
    }
    for (x[i..]) |*v| v.* *= inv;
}

const softmax_lanes = 8;
const F64v = @Vector(softmax_lanes, f64);

/// e^x for x ≤ 0 (NaN stays NaN), within 1e-14 relative (4e-15 measured):
/// rounded to f32 it equals libm's e^x rounded, but in the rarest cases.
/// Built from +, ×, fused multiply-add and bit operations only, so it is the
/// same on every target (libm's exp is a call per element and ~5x slower).
/// x = k·ln2 + r with |r| ≤ ln2/2 (Cody–Waite: ln2 in two parts), e^r by
/// its Taylor series to r^12 (error r^13/13! < 2e-16), times 2^k built in the
/// exponent bits. Below -110 the result is 0 once rounded to f32, so x is
/// clamped there and 2^k stays a normal f64.
fn exp(comptime n: usize, x_in: @Vector(n, f64)) @Vector(n, f64) {
    const V = @Vector(n, f64);
    const lo: V = @splat(-110.0);
    const x = @select(f64, x_in < lo, lo, x_in);
    // Adding 1.5·2^52 rounds x/ln2 to an integer in the low mantissa bits.
    const shifter: V = @splat(0x1.8p52);
    const t = @mulAdd(V, x, @splat(1.0 / std.math.ln2), shifter);
    const k = t - shifter;
    var r = @mulAdd(V, -k, @splat(ln2_hi), x);
    r = @mulAdd(V, -k, @splat(ln2_lo), r);
    var p: V = @splat(1.0 / 479001600.0);
    inline for (.{ 39916800.0, 3628800.0, 362880.0, 40320.0, 5040.0, 720.0, 120.0, 24.0, 6.0, 2.0, 1.0, 1.0 }) |f|
        p = @mulAdd(V, p, r, @splat(1.0 / f));
    const U = @Vector(n, u64);
    const bits = @as(U, @bitCast(t)) -% @as(U, @bitCast(shifter)) +% @as(U, @splat(1023));
    return p * @as(V, @bitCast(bits << @splat(52)));
}

/// ln 2 = ln2_hi + ln2_lo (the first 33 bits and the rest), so that
/// x − k·ln2 keeps its accuracy when x is far from 0.
const ln2_hi: f64 = 0x1.62e42fefp-1;
const ln2_lo: f64 = std.math.ln2 - ln2_hi;

/// Every row of `n` elements of `x`: `softmax(row · scale)`, in place.
pub fn softmax(x: []f32, n: usize, scale: f32) Error!void {
    if (n == 0) return status.fail(error.InvalidArgument, "softmax: row length n must be positive", .{});
    if (x.len % n != 0) return status.fail(error.LengthMismatch, "softmax: x has {d} elements, not a multiple of the row length {d}", .{ x.len, n });
    if (!std.math.isFinite(scale)) return status.fail(error.InvalidArgument, "softmax: scale is {d}", .{scale});
    var r: usize = 0;
    while (r < x.len) : (r += n) softmaxRow(x[r..][0..n], scale);
}

test "swiglu and softmax: close to f64 references, shape errors" {
    var g: [37]f32 = undefined;
    var u: [37]f32 = undefined;
    @import("qdot.zig").testing.fill(&g, 1);
    @import("qdot.zig").testing.fill(&u, 2);
    var y: [37]f32 = undefined;
    try swiglu(&g, &u, &y);
    for (g, u, y) |a, b, got| {
        const want = @as(f64, a) / (1 + @exp(-@as(f64, a))) * b;
        try std.testing.expectApproxEqAbs(want, got, 1e-6 * (@abs(want) + 1));
    }
    try std.testing.expectError(error.LengthMismatch, swiglu(&g, u[0..3], &y));
    var x = g;
    try softmax(&x, 37, 0.5);
    var m: f64 = -std.math.inf(f64);
    for (g) |v| m = @max(m, @as(f64, v) * 0.5);
    var s: f64 = 0;
    for (g) |v| s += @exp(@as(f64, v) * 0.5 - m);
    var total: f64 = 0;
    for (g, x) |v, got| {
        const want = @exp(@as(f64, v) * 0.5 - m) / s;
        try std.testing.expectApproxEqAbs(want, got, 1e-6);
        total += got;
    }
    try std.testing.expectApproxEqAbs(@as(f64, 1), total, 1e-5);
    try std.testing.expectError(error.LengthMismatch, softmax(&x, 5, 1));
}

test "softmax exp: within 1e-14 of libm's over [-110, 0], the same f32 after rounding; 0 gives 1, -inf 0, NaN NaN" {
    var prng = std.Random.DefaultPrng.init(11);
    const r = prng.random();
    var differ: usize = 0;
    const n = 1 << 20;
    for (0..n) |i| {
        // Uniform over the range, plus small |x| where e^x is near 1.
        const x: f64 = if (i % 2 == 0) -110 * r.float(f64) else -r.float(f64) * 1e-3;
        const want = @exp(x);
        const got = exp(1, @splat(x))[0];
        try std.testing.expect(@abs(got - want) <= 1e-14 * want);
        if (@as(f32, @floatCast(got)) != @as(f32, @floatCast(want))) differ += 1;
    }
    try std.testing.expectEqual(0, differ);
    const special = exp(4, .{ 0, -std.math.inf(f64), std.math.nan(f64), -1000 });
    try std.testing.expectEqual(@as(f64, 1), special[0]);
    try std.testing.expectEqual(@as(f32, 0), @as(f32, @floatCast(special[1])));
    try std.testing.expect(std.math.isNan(special[2]));
    try std.testing.expectEqual(@as(f32, 0), @as(f32, @floatCast(special[3])));
}
