//! Q6_K: 256 weights per super-block in 16 sub-blocks of 16; each weight is
//! `d·sc_j·(q − 32)` with q in 0..63 and sc_j a signed byte.
//! Layout (GGML `block_q6_K`): u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d.
//! Each 128-weight half h uses ql[64h..], qh[32h..]: weight 128h+32k+l takes
//! its low 4 bits from ql[64h + 32(k mod 2) + l] (low nibble for k < 2, high
//! for k ≥ 2) and its top 2 bits from bits 2k, 2k+1 of qh[32h + l].
const std = @import("std");
const kq = @import("kquant.zig");
const q8_k = @import("q8_k.zig");

pub const block_elems = kq.qk;
pub const Activation = q8_k.Block;

pub const Block = extern struct {
    ql: [block_elems / 2]u8,
    qh: [block_elems / 4]u8,
    scales: [block_elems / 16]i8,
    d: f16,
};
/// The largest magnitude `quantize` accepts: beyond it the f16 block scales
/// would overflow (d is the largest sub-block scale (about |x|/32) over 128; 65504 is f16's largest).
pub const max_abs: f32 = 1.0e8;

comptime {
    std.debug.assert(@sizeOf(Block) == 210);
}

/// The 6-bit value of weight `e` (0..63).
fn value(b: *const Block, e: usize) u8 {
    const h = e / 128;
    const k = (e % 128) / 32;
    const l = e % 32;
    const low = b.ql[64 * h + 32 * (k % 2) + l];
    const nib = if (k < 2) low & 0xF else low >> 4;
    const top = (b.qh[32 * h + l] >> @intCast(2 * k)) & 3;
    return nib | (top << 4);
}

pub fn dequantize(src: []const Block, dst: []f32) void {
    std.debug.assert(dst.len == src.len * block_elems);
    for (src, 0..) |*b, i| {
        const d: f32 = b.d;
        for (dst[i * block_elems ..][0..block_elems], 0..) |*y, e| {
            const q = @as(i32, value(b, e)) - 32;
            y.* = d * @as(f32, @floatFromInt(b.scales[e / 16])) * @as(f32, @floatFromInt(q));
        }
    }
}

/// Each sub-block is fitted by least squares (kquant.fitSymmetric); the 16
/// scales are then stored as signed bytes against the largest, and the
/// weights rounded again with the scales as stored.
pub fn quantize(src: []const f32, dst: []Block) void {
    std.debug.assert(src.len == dst.len * block_elems);
    const ones: [16]f32 = @splat(1);
    for (dst, 0..) |*b, i| {
        const x = src[i * block_elems ..][0..block_elems];
        var l: [block_elems]i8 = undefined;
        var scales: [16]f32 = undefined;
        for (0..16) |j| scales[j] = kq.fitSymmetric(x[16 * j ..][0..16], &ones, 32, 18, 0.1, l[16 * j ..][0..16]);
        const max_scale = kq.signedAbsMax(&scales);
        b.* = .{ .ql = @splat(0), .qh = @splat(0), .scales = @splat(0), .d = 0 };
        if (max_scale != 0) {
            const iscale = -128 / max_scale;
            b.d = @floatCast(1 / iscale);
            for (&b.scales, scales) |*s, v| s.* = @intCast(@min(127, kq.nearestInt(iscale * v)));
            for (0..16) |j| {
                const dj = @as(f32, b.d) * @as(f32, @floatFromInt(b.scales[j]));
                for (x[16 * j ..][0..16], l[16 * j ..][0..16]) |v, *li| {
                    li.* = if (dj == 0) 0 else @intCast(std.math.clamp(kq.nearestInt(v / dj), -32, 31));
                }
            }
        } else @memset(&l, 0);
        for (l, 0..) |li, e| {
            const q: u8 = @intCast(@as(i16, li) + 32);
            const h = e / 128;
            const k = (e % 128) / 32;
            const j = e % 32;
            const idx = 64 * h + 32 * (k % 2) + j;
            b.ql[idx] |= if (k < 2) q & 0xF else (q & 0xF) << 4;
            b.qh[32 * h + j] |= (q >> 4) << @intCast(2 * k);
        }
    }
}

fn unpackGeneric(b: *const Block, q: *[block_elems]i8) void {
    for (q, 0..) |*v, e| v.* = @intCast(@as(i16, value(b, e)) - 32);
}

/// Weights 32c … 32c+31 (SIMD), unsigned (q + 32).
fn chunk(b: *const Block, comptime c: usize) kq.U8x32 {
    const h = c / 4;
    const k = c % 4;
    const ql: kq.U8x32 = b.ql[64 * h + 32 * (k % 2) ..][0..32].*;
    const qh: kq.U8x32 = b.qh[32 * h ..][0..32].*;
    const low = if (k < 2) ql & @as(kq.U8x32, @splat(0xF)) else ql >> @splat(4);
    return low | (((qh >> @splat(2 * k)) & @as(kq.U8x32, @splat(3))) << @splat(4));
}

fn scalesOf(b: *const Block) struct { sc: [16]i16 } {
    return .{ .sc = @as(@Vector(16, i16), @as(@Vector(16, i8), b.scales)) };
}

const dots = kq.Dots(Block, 32, unpackGeneric, chunk, scalesOf);
/// Scalar reference.
pub const dotGeneric = dots.dotGeneric;
/// SIMD dot product; the same bits as `dotGeneric`.
pub const dot = dots.dot;
/// `dot` of one row with `n` tokens' activations, each weight block unpacked
/// once for all of them: result t has the bits of `dot(w, a[t])`.
pub const dotN = dots.dotN;

test "q6_k: quantize error, SIMD = scalar, dot = f64 dot of dequantized" {
    try kq.testing.checkType(@This(), 0.03);
}
