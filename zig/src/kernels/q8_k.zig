//! Q8_K: the activation type of the K-quants. A block of 256 values is
//! `d · qs[i]`, with `bsums[j]` = Σ qs[16j .. 16j+15] precomputed so that
//! the weight types with per-sub-block minimums need no extra pass.
//! Layout (GGML `block_q8_K`): f32 d; i8 qs[256]; i16 bsums[16] — 292 bytes.
const std = @import("std");
const kq = @import("kquant.zig");

pub const block_elems = kq.qk;

pub const Block = extern struct {
    d: f32,
    qs: [block_elems]i8,
    bsums: [block_elems / 16]i16,
};
comptime {
    std.debug.assert(@sizeOf(Block) == 292);
}

/// Scales each block so its largest-magnitude value becomes −127 (GGML's
/// choice: the scale keeps that value's sign), rounds to nearest-even.
pub fn quantize(src: []const f32, dst: []Block) void {
    std.debug.assert(src.len == dst.len * block_elems);
    for (dst, 0..) |*b, i| {
        const x = src[i * block_elems ..][0..block_elems];
        const max = kq.signedAbsMax(x);
        if (max == 0) {
            b.* = .{ .d = 0, .qs = @splat(0), .bsums = @splat(0) };
            continue;
        }
        const iscale = -127.0 / max;
        for (x, &b.qs) |v, *q| q.* = @intCast(@min(127, kq.nearestInt(iscale * v)));
        for (&b.bsums, 0..) |*s, j| {
            var t: i16 = 0;
            for (b.qs[16 * j ..][0..16]) |q| t += q;
            s.* = t;
        }
        b.d = 1 / iscale;
    }
}

pub fn dequantize(src: []const Block, dst: []f32) void {
    std.debug.assert(dst.len == src.len * block_elems);
    for (src, 0..) |*b, i| {
        for (b.qs, dst[i * block_elems ..][0..block_elems]) |q, *y| y.* = b.d * @as(f32, @floatFromInt(q));
    }
}

test "q8_k: bsums, extremes and error within half a step" {
    var prng = std.Random.DefaultPrng.init(11);
    const r = prng.random();
    var x: [3 * block_elems]f32 = undefined;
    for (&x) |*v| v.* = r.float(f32) * 4 - 2;
    @memset(x[block_elems .. 2 * block_elems], 0);
    x[2 * block_elems + 5] = 9;
    var b: [3]Block = undefined;
    quantize(&x, &b);
    var y: [x.len]f32 = undefined;
    dequantize(&b, &y);
    try std.testing.expectEqual(@as(f32, 0), b[1].d);
    try std.testing.expectEqual(@as(i8, -127), b[2].qs[5]);
    for (b) |blk| {
        for (blk.bsums, 0..) |s, j| {
            var t: i32 = 0;
            for (blk.qs[16 * j ..][0..16]) |q| t += q;
            try std.testing.expectEqual(t, s);
        }
    }
    for (x, y, 0..) |u, v, i| try std.testing.expect(@abs(u - v) <= @abs(b[i / block_elems].d) * 0.5001);
}
