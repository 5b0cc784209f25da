//! F32 weights: dot product with f32 activations.
//! Layout: a row is `n` consecutive little-endian IEEE f32.
const std = @import("std");
const simd = @import("simd.zig");

/// The per-type contract of types.zig, for a float type: one element per "block".
pub const Block = f32;
pub const block_elems = 1;
pub const Activation = f32;

pub fn quantize(src: []const f32, dst: []Block) void {
    @memcpy(dst, src);
}

pub fn dequantize(src: []const Block, dst: []f32) void {
    @memcpy(dst, src);
}

/// Scalar reference with the same accumulation shape as `dot`; the two agree
/// bit for bit.
pub fn dotGeneric(a: []const f32, b: []const f32) f32 {
    std.debug.assert(a.len == b.len);
    var acc: [simd.acc_count][simd.lanes]f32 = @splat(@splat(0));
    var i: usize = 0;
    while (i + simd.step <= a.len) : (i += simd.step) {
        for (0..simd.acc_count) |k| {
            for (0..simd.lanes) |l| {
                const j = i + k * simd.lanes + l;
                acc[k][l] = @mulAdd(f32, a[j], b[j], acc[k][l]);
            }
        }
    }
    var s = simd.finishScalar(&acc);
    while (i < a.len) : (i += 1) s = @mulAdd(f32, a[i], b[i], s);
    return s;
}

/// SIMD dot product.
pub fn dot(a: []const f32, b: []const f32) f32 {
    std.debug.assert(a.len == b.len);
    var acc: [simd.acc_count]simd.F32x = @splat(@splat(0));
    var i: usize = 0;
    while (i + simd.step <= a.len) : (i += simd.step) {
        inline for (0..simd.acc_count) |k| {
            const o = i + k * simd.lanes;
            acc[k] = @mulAdd(simd.F32x, simd.loadF32(a[o..]), simd.loadF32(b[o..]), acc[k]);
        }
    }
    var s = simd.finish(acc);
    while (i < a.len) : (i += 1) s = @mulAdd(f32, a[i], b[i], s);
    return s;
}

test "f32 dot: SIMD equals scalar bit for bit, and is close to f64" {
    var prng = std.Random.DefaultPrng.init(42);
    const r = prng.random();
    const sizes = [_]usize{ 0, 1, 15, 16, 63, 64, 65, 257, 1000, 4096 };
    for (sizes) |n| {
        const a = try std.testing.allocator.alloc(f32, n);
        defer std.testing.allocator.free(a);
        const b = try std.testing.allocator.alloc(f32, n);
        defer std.testing.allocator.free(b);
        var ref: f64 = 0;
        var mag: f64 = 0;
        for (a, b) |*x, *y| {
            x.* = r.float(f32) * 2 - 1;
            y.* = r.float(f32) * 2 - 1;
            ref += @as(f64, x.*) * y.*;
            mag += @abs(@as(f64, x.*) * y.*);
        }
        const fast = dot(a, b);
        const slow = dotGeneric(a, b);
        try std.testing.expectEqual(@as(u32, @bitCast(slow)), @as(u32, @bitCast(fast)));
        try std.testing.expect(@abs(fast - ref) <= 1e-6 * (mag + 1));
    }
}
