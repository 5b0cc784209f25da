//! Q3_K: 256 weights per super-block in 16 sub-blocks of 16; each weight is
//! `d·(s_j − 32)·(q − 4)` with q in 0..7 and 6-bit s_j.
//! Layout (GGML `block_q3_K`): u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d.
//! Weight 128h+32k+l keeps its low 2 bits in bits 2k, 2k+1 of qs[32h+l] and
//! its third bit in bit 4h+k of hmask[l]. Scale s_j has its low 4 bits in
//! scales[j mod 8] (low nibble for j < 8, high for j ≥ 8) and its top 2 bits
//! in bits 2⌊j/4⌋, 2⌊j/4⌋+1 of scales[8 + j mod 4].
const std = @import("std");
const kq = @import("kquant.zig");
const q8_k = @import("q8_k.zig");

pub const block_elems = kq.qk;
pub const Activation = q8_k.Block;

pub const Block = extern struct {
    hmask: [block_elems / 8]u8,
    qs: [block_elems / 4]u8,
    scales: [12]u8,
    d: f16,
};
/// The largest magnitude `quantize` accepts: beyond it the f16 block scales
/// would overflow (d is the largest sub-block scale (about |x|/3) over 32; 65504 is f16's largest).
pub const max_abs: f32 = 5.0e6;

comptime {
    std.debug.assert(@sizeOf(Block) == 110);
}

/// The 16 scales as signed values −32..31.
fn scales16(p: *const [12]u8) [16]i16 {
    const pv: @Vector(12, u8) = p.*;
    const lo: @Vector(16, u8) = @shuffle(u8, pv, undefined, @Vector(16, i32){ 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7 });
    const hi: @Vector(16, u8) = @shuffle(u8, pv, undefined, @Vector(16, i32){ 8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11 });
    const lo_shift = @Vector(16, u3){ 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4 };
    const hi_shift = @Vector(16, u3){ 0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6 };
    const v = ((lo >> lo_shift) & @as(@Vector(16, u8), @splat(0xF))) | (((hi >> hi_shift) & @as(@Vector(16, u8), @splat(3))) << @splat(4));
    return @as(@Vector(16, i16), v) - @as(@Vector(16, i16), @splat(32));
}

/// Scalar definition of `scales16`, for its test.
fn scales16Scalar(p: *const [12]u8) [16]i16 {
    var s: [16]i16 = undefined;
    for (&s, 0..) |*v, j| {
        const low = if (j < 8) p[j] & 0xF else p[j - 8] >> 4;
        const top = (p[8 + j % 4] >> @intCast(2 * (j / 4))) & 3;
        v.* = @as(i16, low | (top << 4)) - 32;
    }
    return s;
}

fn packScales(s: *const [16]u8) [12]u8 {
    var p: [12]u8 = @splat(0);
    for (s, 0..) |v, j| {
        std.debug.assert(v < 64);
        if (j < 8) p[j] |= v & 0xF else p[j - 8] |= (v & 0xF) << 4;
        p[8 + j % 4] |= (v >> 4) << @intCast(2 * (j / 4));
    }
    return p;
}

/// The 3-bit value of weight `e` (0..7).
fn value(b: *const Block, e: usize) u8 {
    const h = e / 128;
    const k = (e % 128) / 32;
    const l = e % 32;
    const low = (b.qs[32 * h + l] >> @intCast(2 * k)) & 3;
    const top = (b.hmask[l] >> @intCast(4 * h + k)) & 1;
    return low | (top << 2);
}

pub fn dequantize(src: []const Block, dst: []f32) void {
    std.debug.assert(dst.len == src.len * block_elems);
    for (src, 0..) |*b, i| {
        const d: f32 = b.d;
        const sc = scales16(&b.scales);
        for (dst[i * block_elems ..][0..block_elems], 0..) |*y, e| {
            const dl = d * @as(f32, @floatFromInt(sc[e / 16]));
            y.* = dl * @as(f32, @floatFromInt(@as(i32, value(b, e)) - 4));
        }
    }
}

/// Each sub-block is fitted by least squares (kquant.fitSymmetric), the 16
/// scales stored in 6 bits against the largest, then the weights rounded
/// again with the scales as stored.
pub fn quantize(src: []const f32, dst: []Block) void {
    std.debug.assert(src.len == dst.len * block_elems);
    const ones: [16]f32 = @splat(1);
    for (dst, 0..) |*b, i| {
        const x = src[i * block_elems ..][0..block_elems];
        var l: [block_elems]i8 = undefined;
        var scales: [16]f32 = undefined;
        for (0..16) |j| scales[j] = kq.fitSymmetric(x[16 * j ..][0..16], &ones, 4, 40, 0.05, l[16 * j ..][0..16]);
        const max_scale = kq.signedAbsMax(&scales);
        var ls: [16]u8 = @splat(32);
        b.d = 0;
        if (max_scale != 0) {
            const iscale = -32 / max_scale;
            b.d = @floatCast(1 / iscale);
            for (&ls, scales) |*s, v| s.* = @intCast(std.math.clamp(kq.nearestInt(iscale * v), -32, 31) + 32);
            for (0..16) |j| {
                const dj = @as(f32, b.d) * @as(f32, @floatFromInt(@as(i32, ls[j]) - 32));
                for (x[16 * j ..][0..16], l[16 * j ..][0..16]) |v, *li| {
                    li.* = if (dj == 0) 0 else @intCast(std.math.clamp(kq.nearestInt(v / dj), -4, 3));
                }
            }
        } else @memset(&l, 0);
        b.scales = packScales(&ls);
        b.qs = @splat(0);
        b.hmask = @splat(0);
        for (l, 0..) |li, e| {
            const q: u8 = @intCast(@as(i16, li) + 4);
            const h = e / 128;
            const k = (e % 128) / 32;
            const j = e % 32;
            b.qs[32 * h + j] |= (q & 3) << @intCast(2 * k);
            b.hmask[j] |= (q >> 2) << @intCast(4 * h + k);
        }
    }
}

fn unpackGeneric(b: *const Block, q: *[block_elems]i8) void {
    for (q, 0..) |*v, e| v.* = @as(i8, @intCast(value(b, e))) - 4;
}

/// Weights 32c … 32c+31 (SIMD), unsigned (q + 4).
fn chunk(b: *const Block, comptime c: usize) kq.U8x32 {
    const h = c / 4;
    const k = c % 4;
    const qs: kq.U8x32 = b.qs[32 * h ..][0..32].*;
    const hm: kq.U8x32 = b.hmask;
    return ((qs >> @splat(2 * k)) & @as(kq.U8x32, @splat(3))) | (((hm >> @splat(4 * h + k)) & @as(kq.U8x32, @splat(1))) << @splat(2));
}

fn scalesOf(b: *const Block) struct { sc: [16]i16 } {
    return .{ .sc = scales16(&b.scales) };
}

const dots = kq.Dots(Block, 4, unpackGeneric, chunk, scalesOf);
/// Scalar reference.
pub const dotGeneric = dots.dotGeneric;
/// SIMD dot product; the same bits as `dotGeneric`.
pub const dot = dots.dot;
/// `dot` of one row with `n` tokens' activations, each weight block unpacked
/// once for all of them: result t has the bits of `dot(w, a[t])`.
pub const dotN = dots.dotN;

test "q3_k: scale packing round-trips" {
    var s: [16]u8 = undefined;
    for (0..64) |v| {
        for (&s, 0..) |*x, j| x.* = @intCast((v + 5 * j) % 64);
        const got = scales16(&packScales(&s));
        try std.testing.expectEqual(scales16Scalar(&packScales(&s)), got);
        for (s, got) |want, g| try std.testing.expectEqual(@as(i16, want) - 32, g);
    }
}

test "q3_k: quantize error, SIMD = scalar, dot = f64 dot of dequantized" {
    try kq.testing.checkType(@This(), 0.25);
}
