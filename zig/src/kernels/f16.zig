//! F16 weights (IEEE binary16): dot product with F16 activations, as GGML
//! (F16's `vec_dot_type` is F16: a matvec rounds the activations to f16 once,
//! then each row reads half the activation bytes of an f32 dot). Both sides
//! are widened to f32 (F16C `vcvtph2ps` on x86-64, FCVTL on aarch64) and the
//! products accumulate in f32 in simd.zig's fixed shape, so every target and
//! the scalar reference agree bit for bit, and equal the f32 kernel on the
//! widened rows. Layout: a row is `n` consecutive little-endian half floats.
const std = @import("std");
const simd = @import("simd.zig");

/// The per-type contract of types.zig, for a float type: one element per "block".
pub const Block = f16;
pub const block_elems = 1;
pub const Activation = f16;

/// Rounds to the nearest half float, ties to even (as GGML's
/// `GGML_FP32_TO_FP16`); beyond ±65504 gives ±inf, NaN stays NaN. Quantizes
/// weights and, once per matvec, activations.
pub fn quantize(src: []const f32, dst: []Block) void {
    std.debug.assert(src.len == dst.len);
    for (src, dst) |x, *h| h.* = @floatCast(x);
}

/// Widens `src` to f32.
pub fn dequantize(src: []const f16, dst: []f32) void {
    std.debug.assert(src.len == dst.len);
    for (src, dst) |h, *d| d.* = h;
}

/// Scalar reference with the same accumulation shape as `dot`.
pub fn dotGeneric(w: []const f16, x: []const f16) f32 {
    std.debug.assert(w.len == x.len);
    var acc: [simd.acc_count][simd.lanes]f32 = @splat(@splat(0));
    var i: usize = 0;
    while (i + simd.step <= w.len) : (i += simd.step) {
        for (0..simd.acc_count) |k| {
            for (0..simd.lanes) |l| {
                const j = i + k * simd.lanes + l;
                acc[k][l] = @mulAdd(f32, w[j], x[j], acc[k][l]);
            }
        }
    }
    var s = simd.finishScalar(&acc);
    while (i < w.len) : (i += 1) s = @mulAdd(f32, w[i], x[i], s);
    return s;
}

/// Half of a logical vector: 8 lanes, one `vcvtph2ps ymm` (the 512-bit form
/// is the slower one on Zen 4) or two FCVTLs.
const half = simd.lanes / 2;
const F32h = @Vector(half, f32);

inline fn loadHalf(p: []const f16) F32h {
    const h: @Vector(half, f16) = p[0..half].*;
    return @floatCast(h);
}

/// SIMD dot product (F16C on x86-64, FCVTL on aarch64), in halves of the
/// logical vectors; lane for lane the same sums as the full ones.
pub fn dot(w: []const f16, x: []const f16) f32 {
    std.debug.assert(w.len == x.len);
    var acc: [simd.acc_count][2]F32h = @splat(.{ @splat(0), @splat(0) });
    var i: usize = 0;
    while (i + simd.step <= w.len) : (i += simd.step) {
        inline for (0..simd.acc_count) |k| {
            inline for (0..2) |h| {
                const o = i + k * simd.lanes + h * half;
                acc[k][h] = @mulAdd(F32h, loadHalf(w[o..]), loadHalf(x[o..]), acc[k][h]);
            }
        }
    }
    var full: [simd.acc_count]simd.F32x = undefined;
    inline for (&full, acc) |*f, a| f.* = std.simd.join(a[0], a[1]);
    var s = simd.finish(full);
    while (i < w.len) : (i += 1) s = @mulAdd(f32, w[i], x[i], s);
    return s;
}

test "f16 dot: SIMD = scalar = f32 kernel on the widened rows, bit for bit" {
    const alloc = std.testing.allocator;
    var prng = std.Random.DefaultPrng.init(7);
    const r = prng.random();
    for ([_]usize{ 0, 3, 64, 100, 2048 + 7 }) |n| {
        const w = try alloc.alloc(f16, n);
        defer alloc.free(w);
        const x = try alloc.alloc(f16, n);
        defer alloc.free(x);
        const xf = try alloc.alloc(f32, n);
        defer alloc.free(xf);
        const wf = try alloc.alloc(f32, n);
        defer alloc.free(wf);
        const xw = try alloc.alloc(f32, n);
        defer alloc.free(xw);
        for (w, xf) |*a, *b| {
            a.* = @floatCast(r.float(f32) * 2 - 1);
            b.* = r.float(f32) * 2 - 1;
        }
        quantize(xf, x);
        dequantize(w, wf);
        dequantize(x, xw);
        for (xf, xw) |a, b| try std.testing.expect(@abs(a - b) <= @abs(a) / 2048);
        const fast = dot(w, x);
        try std.testing.expectEqual(@as(u32, @bitCast(dotGeneric(w, x))), @as(u32, @bitCast(fast)));
        try std.testing.expectEqual(@as(u32, @bitCast(@import("f32.zig").dot(wf, xw))), @as(u32, @bitCast(fast)));
    }
}

test "f16 rounding: ties to even, overflow to inf, NaN kept" {
    // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: to even (1); 1 + 3·2^-11 to 1 + 2^-9.
    const src = [_]f32{ 1 + 0x1p-11, 1 + 3 * 0x1p-11, 65520, -1e6, std.math.nan(f32) };
    var h: [src.len]f16 = undefined;
    quantize(&src, &h);
    try std.testing.expectEqual(@as(f16, 1), h[0]);
    try std.testing.expectEqual(@as(f16, 1 + 0x1p-9), h[1]);
    try std.testing.expect(std.math.isPositiveInf(h[2]));
    try std.testing.expect(std.math.isNegativeInf(h[3]));
    try std.testing.expect(std.math.isNan(h[4]));
}

test "f16 special values widen exactly" {
    const src = [_]f16{ 0.0, -0.0, 1.0, 65504.0, std.math.inf(f16), 5.96e-8 };
    var dst: [src.len]f32 = undefined;
    dequantize(&src, &dst);
    try std.testing.expectEqual(@as(f32, 65504.0), dst[3]);
    try std.testing.expect(std.math.isInf(dst[4]));
    try std.testing.expect(dst[5] > 0 and dst[5] < 1e-7);
    try std.testing.expect(std.math.signbit(dst[1]));
}
