//! BF16 weights (bfloat16: the high 16 bits of an IEEE f32), dot product with
//! f32 activations. Layout: a row is `n` consecutive little-endian u16.
//! Accumulates in simd.zig's fixed shape, so every target and the scalar
//! reference agree bit for bit (and equal the f32 kernel on the widened row).
const std = @import("std");
const simd = @import("simd.zig");

pub const Block = u16;
pub const block_elems = 1;
pub const Activation = f32;

inline fn widen(h: u16) f32 {
    return @bitCast(@as(u32, h) << 16);
}

inline fn load(p: []const u16) simd.F32x {
    const h: @Vector(simd.lanes, u16) = p[0..simd.lanes].*;
    const w: @Vector(simd.lanes, u32) = h;
    return @bitCast(w << @splat(16));
}

/// GGML's conversion (`ggml_compute_fp32_to_bf16`): round to nearest even;
/// NaN stays NaN (made quiet).
pub fn quantize(src: []const f32, dst: []Block) void {
    std.debug.assert(src.len == dst.len);
    for (src, dst) |x, *o| {
        const u: u32 = @bitCast(x);
        o.* = if (u & 0x7fffffff > 0x7f800000)
            @intCast((u >> 16) | 64)
        else
            @intCast((u +% (0x7fff + ((u >> 16) & 1))) >> 16);
    }
}

pub fn dequantize(src: []const Block, dst: []f32) void {
    std.debug.assert(src.len == dst.len);
    for (src, dst) |h, *d| d.* = widen(h);
}

pub fn dotGeneric(w: []const Block, x: []const f32) f32 {
    std.debug.assert(w.len == x.len);
    var acc: [simd.acc_count][simd.lanes]f32 = @splat(@splat(0));
    var i: usize = 0;
    while (i + simd.step <= w.len) : (i += simd.step) {
        for (0..simd.acc_count) |k| {
            for (0..simd.lanes) |l| {
                const j = i + k * simd.lanes + l;
                acc[k][l] = @mulAdd(f32, widen(w[j]), x[j], acc[k][l]);
            }
        }
    }
    var s = simd.finishScalar(&acc);
    while (i < w.len) : (i += 1) s = @mulAdd(f32, widen(w[i]), x[i], s);
    return s;
}

pub fn dot(w: []const Block, x: []const f32) f32 {
    std.debug.assert(w.len == x.len);
    var acc: [simd.acc_count]simd.F32x = @splat(@splat(0));
    var i: usize = 0;
    while (i + simd.step <= w.len) : (i += simd.step) {
        inline for (0..simd.acc_count) |k| {
            const o = i + k * simd.lanes;
            acc[k] = @mulAdd(simd.F32x, load(w[o..]), simd.loadF32(x[o..]), acc[k]);
        }
    }
    var s = simd.finish(acc);
    while (i < w.len) : (i += 1) s = @mulAdd(f32, widen(w[i]), x[i], s);
    return s;
}

test "bf16 dot: SIMD = scalar = f32 kernel on the widened row, bit for bit" {
    const alloc = std.testing.allocator;
    for ([_]usize{ 0, 5, 64, 100, 2048 + 7 }) |n| {
        const x = try alloc.alloc(f32, n);
        defer alloc.free(x);
        const w = try alloc.alloc(f32, n);
        defer alloc.free(w);
        const h = try alloc.alloc(u16, n);
        defer alloc.free(h);
        const back = try alloc.alloc(f32, n);
        defer alloc.free(back);
        var prng = std.Random.DefaultPrng.init(n);
        for (w, x) |*a, *b| {
            a.* = prng.random().float(f32) * 2 - 1;
            b.* = prng.random().float(f32) * 2 - 1;
        }
        quantize(w, h);
        dequantize(h, back);
        for (w, back) |a, b| try std.testing.expect(@abs(a - b) <= @abs(a) / 256);
        const fast = dot(h, x);
        try std.testing.expectEqual(@as(u32, @bitCast(dotGeneric(h, x))), @as(u32, @bitCast(fast)));
        try std.testing.expectEqual(@as(u32, @bitCast(@import("f32.zig").dot(back, x))), @as(u32, @bitCast(fast)));
    }
}

test "bf16 rounding: ties to even, NaN stays NaN, infinities kept" {
    const src = [_]f32{ 1.0, @bitCast(@as(u32, 0x3f808000)), @bitCast(@as(u32, 0x3f818000)), std.math.nan(f32), -std.math.inf(f32) };
    var h: [src.len]u16 = undefined;
    quantize(&src, &h);
    try std.testing.expectEqual([_]u16{ 0x3f80, 0x3f80, 0x3f82 }, h[0..3].*);
    try std.testing.expect(std.math.isNan(widen(h[3])));
    try std.testing.expectEqual(@as(u16, 0xff80), h[4]);
}
