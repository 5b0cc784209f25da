//! Q4_0: blocks of 32 4-bit values with one f16 scale; value = d·(q − 8).
//! Byte j holds element j in its low nibble and element j+16 in its high one.
//! GGML: `block_q4_0 { ggml_half d; uint8_t qs[16]; }` (18 bytes); activations Q8_0.
const std = @import("std");
const qdot = @import("qdot.zig");
const q8_0 = @import("q8_0.zig");

pub const Block = extern struct {
    d: f16,
    qs: [16]u8,
};
comptime {
    std.debug.assert(@sizeOf(Block) == 18);
}
pub const block_elems = 32;
pub const Activation = q8_0.Block;

/// GGML's reference quantizer: d = −(value of max |x|)/8, q = trunc(x/d + 8.5) clamped to 15.
pub fn quantize(src: []const f32, dst: []Block) void {
    std.debug.assert(src.len == dst.len * block_elems);
    for (dst, 0..) |*b, i| {
        const x = src[i * block_elems ..][0..block_elems];
        const d = qdot.absMax(x).value / -8.0;
        const id = qdot.inverse(d);
        b.d = @floatCast(d);
        for (&b.qs, 0..) |*q, j| {
            const lo: u8 = @intCast(qdot.truncClamp(x[j] * id + 8.5, 0, 15));
            const hi: u8 = @intCast(qdot.truncClamp(x[j + 16] * id + 8.5, 0, 15));
            q.* = lo | hi << 4;
        }
    }
}

/// The 32 signed values q − 8 of a block, in element order (scalar).
fn unpackScalar(b: *const Block) [32]i8 {
    var v: [32]i8 = undefined;
    for (b.qs, 0..) |q, j| {
        v[j] = @as(i8, @intCast(q & 0x0F)) - 8;
        v[j + 16] = @as(i8, @intCast(q >> 4)) - 8;
    }
    return v;
}

/// SIMD twin of `unpackScalar`, without the offset: the nibbles 0..15.
inline fn unpack(b: *const Block) qdot.U8x32 {
    const qs: @Vector(16, u8) = b.qs;
    return std.simd.join(qs & @as(@Vector(16, u8), @splat(0x0F)), qs >> @splat(4));
}

pub fn dequantize(src: []const Block, dst: []f32) void {
    std.debug.assert(dst.len == src.len * block_elems);
    for (src, 0..) |*b, i| {
        const d: f32 = b.d;
        for (dst[i * block_elems ..][0..block_elems], unpackScalar(b)) |*y, q| y.* = @as(f32, @floatFromInt(q)) * d;
    }
}

pub inline fn quads(wb: *const Block, ab: *const Activation) qdot.I32x8 {
    return qdot.quadsOffset(unpack(wb), ab.qs, 8);
}

pub fn quadsScalar(wb: *const Block, ab: *const Activation) [qdot.quad_lanes]i32 {
    return qdot.quadsScalar(&unpackScalar(wb), &ab.qs);
}

pub inline fn scale(wb: *const Block, ab: *const Activation) [2]f16 {
    return .{ wb.d, ab.d };
}

pub fn dotGeneric(w: []const Block, a: []const Activation) f32 {
    return qdot.dotScalar(@This(), w, a);
}

pub fn dot(w: []const Block, a: []const Activation) f32 {
    return qdot.dot(@This(), w, a);
}

/// `dot` of one row with `n` tokens' activations at once: result t has the bits of `dot(w, a[t])`.
pub fn dotN(comptime n: usize, w: []const Block, a: *const [n][]const Activation) [n]f32 {
    return qdot.dotN(@This(), n, w, a);
}

test "q4_0: SIMD = scalar bit for bit, dot within budget of f32, round trip" {
    // Budget: weights carry up to d/2 = max|w|/16 absolute error.
    try qdot.testing.checkType(@This(), q8_0, 0.12, 0.21);
}

test "q4_0: nibble order and offset" {
    var b = Block{ .d = 2.0, .qs = undefined };
    for (&b.qs, 0..) |*q, j| q.* = @intCast(j | (15 - j) << 4);
    var y: [32]f32 = undefined;
    dequantize(&.{b}, &y);
    try std.testing.expectEqual(@as(f32, -16), y[0]);
    try std.testing.expectEqual(@as(f32, 14), y[15]);
    try std.testing.expectEqual(@as(f32, 14), y[16]);
    try std.testing.expectEqual(@as(f32, -16), y[31]);
    const v: [32]i8 = @as(qdot.I8x32, @bitCast(unpack(&b))) - @as(qdot.I8x32, @splat(8));
    try std.testing.expectEqual(unpackScalar(&b), v);
}
