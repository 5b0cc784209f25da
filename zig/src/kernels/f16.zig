//! F16 weights (IEEE binary16): dot product with f32 activations.
//! Layout: a row is `n` consecutive little-endian half floats.
const std = @import("std");
const simd = @import("simd.zig");

/// The per-type contract of types.zig, for a float type: one element per "block".
pub const Block = f16;
pub const block_elems = 1;
pub const Activation = f32;

/// Rounds to the nearest half float, ties to even (as GGML's fp32→fp16).
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
pub fn dotGeneric(w: []const f16, x: []const f32) f32 {
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

/// SIMD dot product (F16C on x86-64, FCVTL on aarch64).
pub fn dot(w: []const f16, x: []const f32) f32 {
    std.debug.assert(w.len == x.len);
    var acc: [simd.acc_count]simd.F32x = @splat(@splat(0));
    var i: usize = 0;
    while (i + simd.step <= w.len) : (i += simd.step) {
        inline for (0..simd.acc_count) |k| {
            const o = i + k * simd.lanes;
            acc[k] = @mulAdd(simd.F32x, simd.loadF16(w[o..]), simd.loadF32(x[o..]), acc[k]);
        }
    }
    var s = simd.finish(acc);
    while (i < w.len) : (i += 1) s = @mulAdd(f32, w[i], x[i], s);
    return s;
}

test "f16 dot: SIMD equals scalar bit for bit, and matches f32 of the widened row" {
    var prng = std.Random.DefaultPrng.init(7);
    const r = prng.random();
    const sizes = [_]usize{ 0, 3, 64, 100, 2048 };
    for (sizes) |n| {
        const w = try std.testing.allocator.alloc(f16, n);
        defer std.testing.allocator.free(w);
        const wf = try std.testing.allocator.alloc(f32, n);
        defer std.testing.allocator.free(wf);
        const x = try std.testing.allocator.alloc(f32, n);
        defer std.testing.allocator.free(x);
        for (w, x) |*a, *b| {
            a.* = @floatCast(r.float(f32) * 2 - 1);
            b.* = r.float(f32) * 2 - 1;
        }
        dequantize(w, wf);
        const fast = dot(w, x);
        try std.testing.expectEqual(@as(u32, @bitCast(dotGeneric(w, x))), @as(u32, @bitCast(fast)));
        // Same accumulation shape, so identical to the f32 kernel on the widened row.
        try std.testing.expectEqual(@as(u32, @bitCast(@import("f32.zig").dot(wf, x))), @as(u32, @bitCast(fast)));
    }
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
