//! Q5_0: blocks of 32 5-bit values with one f16 scale; value = d·(q − 16).
//! Low 4 bits as in Q4_0 (byte j: element j low nibble, j+16 high nibble);
//! bit e of the little-endian u32 `qh` is the 5th bit of element e.
//! GGML: `block_q5_0 { ggml_half d; uint8_t qh[4]; uint8_t qs[16]; }` (22 bytes); activations Q8_0.
const std = @import("std");
const qdot = @import("qdot.zig");
const q8_0 = @import("q8_0.zig");

pub const Block = extern struct {
    d: f16,
    qh: [4]u8,
    qs: [16]u8,
};
comptime {
    std.debug.assert(@sizeOf(Block) == 22);
}
pub const block_elems = 32;
pub const Activation = q8_0.Block;

/// GGML's reference quantizer: d = −(value of max |x|)/16, q = trunc(x/d + 16.5) ≤ 31.
pub fn quantize(src: []const f32, dst: []Block) void {
    std.debug.assert(src.len == dst.len * block_elems);
    for (dst, 0..) |*b, i| {
        const x = src[i * block_elems ..][0..block_elems];
        const d = qdot.absMax(x).value / -16.0;
        const id = qdot.inverse(d);
        b.d = @floatCast(d);
        var q: [32]u8 = undefined;
        for (&q, x) |*o, v| o.* = @intCast(qdot.truncClamp(v * id + 16.5, 0, 31));
        packFive(&q, &b.qs, &b.qh);
    }
}

/// Splits 32 five-bit values into nibbles (`qs`) and fifth bits (`qh`); shared with Q5_1.
pub fn packFive(q: *const [32]u8, qs: *[16]u8, qh: *[4]u8) void {
    var h: u32 = 0;
    for (qs, 0..) |*o, j| {
        o.* = (q[j] & 0x0F) | (q[j + 16] & 0x0F) << 4;
        h |= @as(u32, q[j] >> 4) << @intCast(j);
        h |= @as(u32, q[j + 16] >> 4) << @intCast(j + 16);
    }
    qh.* = @bitCast(std.mem.nativeToLittle(u32, h));
}

/// The 32 unsigned five-bit values of a block, in element order (scalar).
pub fn fiveScalar(qs: *const [16]u8, qh: *const [4]u8) [32]i8 {
    const h = std.mem.readInt(u32, qh, .little);
    var v: [32]i8 = undefined;
    for (qs, 0..) |q, j| {
        v[j] = @intCast((q & 0x0F) | ((h >> @intCast(j)) & 1) << 4);
        v[j + 16] = @intCast((q >> 4) | ((h >> @intCast(j + 16)) & 1) << 4);
    }
    return v;
}

/// SIMD twin of `fiveScalar`: bit e of qh selects 16 more for element e.
pub inline fn five(qs: *const [16]u8, qh: *const [4]u8) qdot.U8x32 {
    const q: @Vector(16, u8) = qs.*;
    const low = std.simd.join(q & @as(@Vector(16, u8), @splat(0x0F)), q >> @splat(4));
    const high: @Vector(32, bool) = @bitCast(std.mem.readInt(u32, qh, .little));
    return @select(u8, high, low | @as(qdot.U8x32, @splat(0x10)), low);
}

pub fn dequantize(src: []const Block, dst: []f32) void {
    std.debug.assert(dst.len == src.len * block_elems);
    for (src, 0..) |*b, i| {
        const d: f32 = b.d;
        const v = fiveScalar(&b.qs, &b.qh);
        for (dst[i * block_elems ..][0..block_elems], v) |*y, q| y.* = @as(f32, @floatFromInt(@as(i32, q) - 16)) * d;
    }
}

pub inline fn quads(wb: *const Block, ab: *const Activation) qdot.I32x8 {
    return qdot.quadsOffset(five(&wb.qs, &wb.qh), ab.qs, 16);
}

pub fn quadsScalar(wb: *const Block, ab: *const Activation) [qdot.quad_lanes]i32 {
    var v = fiveScalar(&wb.qs, &wb.qh);
    for (&v) |*e| e.* -= 16;
    return qdot.quadsScalar(&v, &ab.qs);
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

test "q5_0: SIMD = scalar bit for bit, dot within budget of f32, round trip" {
    try qdot.testing.checkType(@This(), q8_0, 0.06, 0.12);
}

test "q5_0: fifth bits unpack the same in SIMD and scalar" {
    var q: [32]u8 = undefined;
    for (&q, 0..) |*v, e| v.* = @intCast((e * 13 + 7) % 32);
    var b: Block = .{ .d = 1, .qh = undefined, .qs = undefined };
    packFive(&q, &b.qs, &b.qh);
    const s = fiveScalar(&b.qs, &b.qh);
    const v: [32]i8 = @bitCast(five(&b.qs, &b.qh));
    try std.testing.expectEqual(s, v);
    for (q, s) |want, got| try std.testing.expectEqual(@as(i8, @intCast(want)), got);
}
