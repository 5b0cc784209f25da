//! Attention of one query token over a KV cache, as llama.cpp's graph without
//! flash attention computes it: per head, scores = K·q (GGML's mul_mat),
//! softmax(scores · scale) (ggml_soft_max_ext, no mask: the cache holds only
//! the positions this token sees), then out = Σ_p softmax_p · V_p (mul_mat
//! with V). Grouped-query attention: head h reads KV head h / (n_head / n_head_kv).
//!
//! Cache layout: position-major, `n_kv` positions × `n_head_kv` heads ×
//! `head_dim`, of f32 or f16. With an F16 cache the f32 operands of both
//! products are rounded to f16 first, as GGML's vec_dot_type for F16 does
//! (the products of two f16 values are then exact in f32).
//!
//! Both products are summed in f32, as GGML's f32 and f16 vec_dots do, in an
//! order fixed here rather than by the target's vector width:
//! - a score K_p·q: `lanes` (16) partial sums of fused multiply-adds over the
//!   head's elements (GGML's AVX-512 shape; two registers on AVX2, four on
//!   NEON), added as a tree, then the elements past the last whole 16 in order;
//! - an output element: Σ_p w_p·V_p[i] by fused multiply-adds in position
//!   order (the running sums may rest in `out` between blocks of positions, as
//!   f32, which changes nothing).
//! So every target and thread count gives the same bits (the test checks them
//! against a scalar twin), within a few f32 ulp of GGML's own lane order. The
//! sums were f64 before: a little closer to GGML where it too sums in f64 (its
//! f16 dot's tail), but half the lanes per vector and a widening per element
//! (bench/matmul.md, "Attention").
//!
//! KV heads (each with its group of query heads) are split over the pool's
//! threads; each head's result is computed by the same code whatever the
//! thread count. Every K and V row is read once per group of query heads, and
//! the only scratch (the scores) is allocated by the calling thread.
const std = @import("std");
const builtin = @import("builtin");
const status = @import("../c_api/status.zig");
const threads = @import("../threads.zig");
const types = @import("types.zig");
const act = @import("act.zig");
const simd = @import("simd.zig");

const Error = status.Error;

pub const Shape = struct { n_head: usize, n_head_kv: usize, head_dim: usize, n_kv: usize, scale: f32 };

/// `out` (`n_head × head_dim`) = attention of `q` (same shape) over the
/// caches `k` and `v` (bytes of `n_kv × n_head_kv × head_dim` elements of `kv_type`).
pub fn attention(pool: ?*threads.Pool, kv_type: types.GgmlType, q: []const f32, k: []const u8, v: []const u8, out: []f32, s: Shape) Error!void {
    return switch (kv_type) {
        .f32 => attentionAs(f32, pool, q, k, v, out, s),
        .f16 => attentionAs(f16, pool, q, k, v, out, s),
        else => status.fail(error.Unsupported, "attention: KV cache type {d} is not f32 (0) or f16 (1)", .{@intFromEnum(kv_type)}),
    };
}

fn cacheOf(comptime T: type, bytes: []const u8, name: []const u8, n: usize) Error![]const T {
    if (bytes.len != n * @sizeOf(T))
        return status.fail(error.LengthMismatch, "attention: {s} cache has {d} bytes, expected n_kv*n_head_kv*head_dim*{d} = {d}", .{ name, bytes.len, @sizeOf(T), n * @sizeOf(T) });
    if (@intFromPtr(bytes.ptr) % @alignOf(T) != 0)
        return status.fail(error.InvalidArgument, "attention: {s} cache is not aligned to {d} bytes", .{ name, @alignOf(T) });
    const p: [*]const T = @ptrCast(@alignCast(bytes.ptr));
    return p[0..n];
}

fn attentionAs(comptime T: type, pool: ?*threads.Pool, q: []const f32, k_bytes: []const u8, v_bytes: []const u8, out: []f32, s: Shape) Error!void {
    if (s.n_head == 0 or s.n_head_kv == 0 or s.head_dim == 0 or s.n_kv == 0)
        return status.fail(error.InvalidArgument, "attention: n_head {d}, n_head_kv {d}, head_dim {d} and n_kv {d} must be positive", .{ s.n_head, s.n_head_kv, s.head_dim, s.n_kv });
    if (s.n_head % s.n_head_kv != 0)
        return status.fail(error.InvalidArgument, "attention: n_head {d} is not a multiple of n_head_kv {d}", .{ s.n_head, s.n_head_kv });
    if (!std.math.isFinite(s.scale)) return status.fail(error.InvalidArgument, "attention: scale is {d}", .{s.scale});
    const q_len = std.math.mul(usize, s.n_head, s.head_dim) catch
        return status.fail(error.InvalidArgument, "attention: n_head {d} x head_dim {d} overflows", .{ s.n_head, s.head_dim });
    const kv_dim = s.n_head_kv * s.head_dim;
    const cache_len = std.math.mul(usize, s.n_kv, kv_dim) catch
        return status.fail(error.InvalidArgument, "attention: n_kv {d} x {d} overflows", .{ s.n_kv, kv_dim });
    if (q.len != q_len) return status.fail(error.LengthMismatch, "attention: q has {d} elements, expected n_head*head_dim = {d}", .{ q.len, q_len });
    if (out.len != q_len) return status.fail(error.LengthMismatch, "attention: out has {d} elements, expected n_head*head_dim = {d}", .{ out.len, q_len });
    const k = try cacheOf(T, k_bytes, "k", cache_len);
    const v = try cacheOf(T, v_bytes, "v", cache_len);

    // The only scratch: every head's scores, allocated here on the calling
    // thread (pool workers have small stacks). 64 KiB covers 32 heads over 512
    // positions; longer contexts take malloc's memory, which it reuses from
    // call to call instead of mapping (and faulting in) fresh pages each time.
    const n_scores = std.math.mul(usize, s.n_head, s.n_kv) catch
        return status.fail(error.InvalidArgument, "attention: n_head {d} x n_kv {d} overflows", .{ s.n_head, s.n_kv });
    var fallback = std.heap.stackFallback(64 * 1024, std.heap.c_allocator);
    const alloc = fallback.get();
    const scores = alloc.alloc(f32, n_scores) catch
        return status.fail(error.OutOfMemory, "attention: no memory for {d} heads x {d} scores", .{ s.n_head, s.n_kv });
    defer alloc.free(scores);

    const Heads = struct {
        q: []const f32,
        k: []const T,
        v: []const T,
        out: []f32,
        scores: []f32,
        s: Shape,
        /// KV heads `begin..end`, each with its group of query heads: every K and V
        /// row is read once for the group, and each query head's numbers come out
        /// exactly as if it were computed alone.
        fn run(ctx: *const anyopaque, begin: usize, end: usize) void {
            const c: *const @This() = @ptrCast(@alignCast(ctx));
            const hd = c.s.head_dim;
            const n_kv = c.s.n_kv;
            const group = c.s.n_head / c.s.n_head_kv;
            const kv = Cache(T){ .row = c.s.n_head_kv * hd, .head_dim = hd, .n_kv = n_kv };
            for (begin..end) |g| {
                const heads = g * group * hd;
                const o = c.out[heads..][0 .. group * hd];
                const sc = c.scores[g * group * n_kv ..][0 .. group * n_kv];
                // An F16 cache's queries, rounded to f16, wait in `out` until the sums replace them.
                const qg: []const f32 = if (T == f16) blk: {
                    for (o, c.q[heads..][0..o.len]) |*d, x| d.* = @as(f16, @floatCast(x));
                    break :blk o;
                } else c.q[heads..][0..o.len];
                kv.scores(c.k[g * hd ..], qg, sc);
                for (0..group) |h| {
                    const row = sc[h * n_kv ..][0..n_kv];
                    act.softmaxRow(row, c.s.scale);
                    if (T == f16) for (row) |*x| {
                        x.* = @as(f16, @floatCast(x.*));
                    };
                }
                kv.weightedSums(c.v[g * hd ..], sc, o);
            }
        }
    };
    const ctx = Heads{ .q = q, .k = k, .v = v, .out = out, .scores = scores, .s = s };
    const job = threads.Job{ .ctx = &ctx, .func = Heads.run, .rows = s.n_head_kv };
    if (pool) |p| {
        p.run(job) catch return status.fail(error.Busy, "attention: the thread pool is running another call", .{});
    } else job.func(job.ctx, 0, s.n_head_kv);
}

/// Logical lanes of a score's sum (fixed on every target; see the header).
const lanes = simd.lanes;
const F32x = simd.F32x;
/// Scores computed together: `score_heads` query heads share each K vector
/// load (and its f16 widening), `score_positions` positions each q load. 8
/// accumulators on targets with 32 vector registers, 4 on those with 16.
const score_heads = if (builtin.cpu.arch == .x86_64 and !has_avx512) 2 else 4;
const score_positions = 2;
/// Each weighted sum keeps `sum_heads` heads × `sum_vectors` vectors of
/// `sum_lanes` columns in registers while V streams past: 16 accumulators on
/// targets with 32 vector registers (AVX-512, NEON), 8 on those with 16. The
/// width is the target's own (full 512-bit vectors with AVX-512: Zen 4 splits
/// them but needs half the instructions); the sums are per column, so the
/// width and tile change nothing in the result.
const sum_heads = 2;
const has_avx512 = builtin.cpu.arch == .x86_64 and std.Target.x86.featureSetHas(builtin.cpu.features, .avx512f);
const sum_lanes = if (has_avx512) 16 else std.simd.suggestVectorLength(f32) orelse 4;
const sum_vectors = if (builtin.cpu.arch == .x86_64 and !has_avx512) 4 else 8;
/// Positions per block of the weighted sums (16 rows of 128 f32 = 8 KiB).
const block_positions = 16;

fn Cache(comptime T: type) type {
    return struct {
        /// Elements from one position to the next.
        row: usize,
        head_dim: usize,
        n_kv: usize,

        inline fn load(p: []const T) F32x {
            return if (T == f16) simd.loadF16(p) else simd.loadF32(p);
        }

        /// `scores[h·n_kv + p]` = K_p · q_h for each head `h` of `q` (rows of
        /// `head_dim`); `k` starts at this KV head's first element. Tiles of
        /// `score_heads` heads × `score_positions` positions share their loads.
        fn scores(self: @This(), k: []const T, q: []const f32, out: []f32) void {
            const n_head = q.len / self.head_dim;
            var p: usize = 0;
            while (p + score_positions <= self.n_kv) : (p += score_positions) self.scoreHeads(score_positions, k, q, out, p, n_head);
            while (p < self.n_kv) : (p += 1) self.scoreHeads(1, k, q, out, p, n_head);
        }

        fn scoreHeads(self: @This(), comptime np: usize, k: []const T, q: []const f32, out: []f32, p: usize, n_head: usize) void {
            var h: usize = 0;
            while (h + score_heads <= n_head) : (h += score_heads) self.dots(score_heads, np, k, q, out, h, p);
            while (h < n_head) : (h += 1) self.dots(1, np, k, q, out, h, p);
        }

        /// The scores of heads `h..h+nh` at positions `p..p+np`: per score one
        /// `lanes`-wide fused multiply-add chain over the whole vectors, its
        /// lanes summed as a tree (`laneSums`), then the tail elements in order.
        inline fn dots(self: @This(), comptime nh: usize, comptime np: usize, k: []const T, q: []const f32, out: []f32, h: usize, p: usize) void {
            const hd = self.head_dim;
            var acc: [nh * np]F32x = @splat(@splat(0));
            var i: usize = 0;
            while (i + lanes <= hd) : (i += lanes) {
                var kv: [np]F32x = undefined;
                inline for (&kv, 0..) |*x, j| x.* = load(k[(p + j) * self.row + i ..]);
                inline for (0..nh) |a| {
                    const qv = simd.loadF32(q[(h + a) * hd + i ..]);
                    inline for (kv, 0..) |x, j| acc[a * np + j] = @mulAdd(F32x, x, qv, acc[a * np + j]);
                }
            }
            const total = laneSums(nh * np, acc);
            inline for (0..nh) |a| inline for (0..np) |j| {
                var sum = total[a * np + j];
                for (i..hd) |e| sum = @mulAdd(f32, k[(p + j) * self.row + e], q[(h + a) * hd + e], sum);
                out[(h + a) * self.n_kv + p + j] = sum;
            };
        }

        /// `out[h·head_dim + i]` = Σ_p w[h·n_kv + p] · V_p[i] for each head `h`
        /// of `w`, summed over the positions in order; `v` starts at this KV
        /// head's first element. The positions go in blocks whose V rows stay
        /// in L1 while every column and head passes over them; between blocks
        /// the running sums wait in `out` (as f32: the order is unchanged).
        fn weightedSums(self: @This(), v: []const T, w: []const f32, out: []f32) void {
            const n_head = w.len / self.n_kv;
            var p0: usize = 0;
            while (p0 < self.n_kv) : (p0 += block_positions) {
                const ps = Positions{ .begin = p0, .end = @min(self.n_kv, p0 + block_positions) };
                var i: usize = 0;
                while (i + sum_vectors * sum_lanes <= self.head_dim) : (i += sum_vectors * sum_lanes)
                    self.columns(sum_lanes, sum_vectors, v[i..], w, out[i..], n_head, ps);
                while (i + sum_lanes <= self.head_dim) : (i += sum_lanes) self.columns(sum_lanes, 1, v[i..], w, out[i..], n_head, ps);
                while (i < self.head_dim) : (i += 1) self.columns(1, 1, v[i..], w, out[i..], n_head, ps);
            }
        }

        const Positions = struct { begin: usize, end: usize };

        /// `vectors` × `width` columns of every head's output over positions `ps`, `sum_heads` heads at a time.
        fn columns(self: @This(), comptime width: usize, comptime vectors: usize, v: []const T, w: []const f32, out: []f32, n_head: usize, ps: Positions) void {
            var h: usize = 0;
            while (h + sum_heads <= n_head) : (h += sum_heads)
                self.sums(width, vectors, sum_heads, v, w[h * self.n_kv ..], out[h * self.head_dim ..], ps);
            while (h < n_head) : (h += 1) self.sums(width, vectors, 1, v, w[h * self.n_kv ..], out[h * self.head_dim ..], ps);
        }

        inline fn sums(self: @This(), comptime width: usize, comptime vectors: usize, comptime n: usize, v: []const T, w: []const f32, out: []f32, ps: Positions) void {
            const V = @Vector(width, f32);
            var acc: [n][vectors]V = undefined;
            inline for (&acc, 0..) |*a, h| inline for (a, 0..) |*x, c| {
                x.* = if (ps.begin == 0) @splat(0) else out[h * self.head_dim + c * width ..][0..width].*;
            };
            for (ps.begin..ps.end) |p| {
                var wp: [n]V = undefined;
                inline for (&wp, 0..) |*x, h| x.* = @splat(w[h * self.n_kv + p]);
                inline for (0..vectors) |c| {
                    const src = v[p * self.row + c * width ..][0..width];
                    const x: V = if (T == f16) @floatCast(@as(@Vector(width, f16), src.*)) else src.*;
                    inline for (&acc, wp) |*a, wh| a[c] = @mulAdd(V, wh, x, a[c]);
                }
            }
            inline for (acc, 0..) |a, h| inline for (a, 0..) |x, c| {
                out[h * self.head_dim + c * width ..][0..width].* = x;
            };
        }
    };
}

/// The lanes of each of `n` (1, 2, 4 or 8) vectors summed as a tree, lane
/// `i` with lane `i + half` at each level (16 → 8 → 4 → 2 → 1, as simd.sum8
/// after (v[i] + v[i+8])). The first levels pack two vectors' halves into one
/// vector per add, so n vectors take about as many adds as one.
inline fn laneSums(comptime n: usize, acc: [n]F32x) [n]f32 {
    comptime std.debug.assert(std.math.isPowerOfTwo(n) and n <= lanes);
    var v = acc;
    comptime var count = n;
    comptime var w = lanes;
    inline while (count > 1) : ({
        count /= 2;
        w /= 2;
    }) {
        inline for (0..count / 2) |i| v[i] = @shuffle(f32, v[2 * i], v[2 * i + 1], pairMask(w, 0)) + @shuffle(f32, v[2 * i], v[2 * i + 1], pairMask(w, w / 2));
    }
    return narrow(lanes, w, v[0]);
}

/// Two vectors of `lanes / w` sums of `w` lanes each → one of twice as many
/// sums of `w / 2` lanes: the lanes `off..off + w/2` of each sum (`off` 0 or w/2).
fn pairMask(comptime w: usize, comptime off: usize) @Vector(lanes, i32) {
    const d = lanes / w;
    var m: [lanes]i32 = undefined;
    for (0..2 * d) |t| for (0..w / 2) |j| {
        const lane: i32 = @intCast((t % d) * w + j + off);
        m[t * (w / 2) + j] = if (t < d) lane else ~lane;
    };
    return m;
}

/// One vector of `len / w` sums of `w` lanes → half as long, sums of `w / 2`
/// lanes, down to one lane per sum.
inline fn narrow(comptime len: usize, comptime w: usize, v: @Vector(len, f32)) [len / w]f32 {
    if (w == 1) return v;
    const half = struct {
        fn mask(comptime off: usize) @Vector(len / 2, i32) {
            var m: [len / 2]i32 = undefined;
            for (0..len / w) |t| for (0..w / 2) |j| {
                m[t * (w / 2) + j] = @intCast(t * w + j + off);
            };
            return m;
        }
    };
    return narrow(len / 2, w / 2, @shuffle(f32, v, undefined, half.mask(0)) + @shuffle(f32, v, undefined, half.mask(w / 2)));
}

/// An f64 reference of the same computation for the tests.
fn reference(comptime T: type, q: []const f32, k: []const T, v: []const T, out: []f64, s: Shape) !void {
    const hd = s.head_dim;
    const kv_dim = s.n_head_kv * hd;
    const scores = try std.testing.allocator.alloc(f64, s.n_kv);
    defer std.testing.allocator.free(scores);
    for (0..s.n_head) |h| {
        const ko = (h / (s.n_head / s.n_head_kv)) * hd;
        var max: f64 = -std.math.inf(f64);
        for (0..s.n_kv) |p| {
            var d: f64 = 0;
            for (0..hd) |i| d += @as(f64, q[h * hd + i]) * @as(f64, k[p * kv_dim + ko + i]);
            scores[p] = d * s.scale;
            max = @max(max, scores[p]);
        }
        var sum: f64 = 0;
        for (scores) |*x| {
            x.* = @exp(x.* - max);
            sum += x.*;
        }
        for (0..hd) |i| {
            var o: f64 = 0;
            for (0..s.n_kv) |p| o += scores[p] / sum * @as(f64, v[p * kv_dim + ko + i]);
            out[h * hd + i] = o;
        }
    }
}

/// A scalar twin of `attention` for the tests: one head at a time, the sums in
/// the order the header states, element by element.
fn twin(comptime T: type, q: []const f32, k: []const T, v: []const T, out: []f32, s: Shape) !void {
    const hd = s.head_dim;
    const kv_dim = s.n_head_kv * hd;
    const w = try std.testing.allocator.alloc(f32, s.n_kv);
    defer std.testing.allocator.free(w);
    for (0..s.n_head) |h| {
        const ko = (h / (s.n_head / s.n_head_kv)) * hd;
        const qh = q[h * hd ..][0..hd];
        for (w, 0..) |*score, p| {
            const kr = k[p * kv_dim + ko ..][0..hd];
            var acc: [lanes]f32 = @splat(0);
            var i: usize = 0;
            while (i + lanes <= hd) : (i += lanes) {
                for (&acc, i..) |*a, j| a.* = @mulAdd(f32, kr[j], if (T == f16) @as(f16, @floatCast(qh[j])) else qh[j], a.*);
            }
            var half: [8]f32 = undefined;
            for (&half, 0..) |*x, l| x.* = acc[l] + acc[l + 8];
            var sum = simd.sum8Scalar(&half);
            for (i..hd) |j| sum = @mulAdd(f32, kr[j], if (T == f16) @as(f16, @floatCast(qh[j])) else qh[j], sum);
            score.* = sum;
        }
        act.softmaxRow(w, s.scale);
        for (0..hd) |i| {
            var o: f32 = 0;
            for (w, 0..) |x, p| o = @mulAdd(f32, if (T == f16) @as(f16, @floatCast(x)) else x, v[p * kv_dim + ko + i], o);
            out[h * hd + i] = o;
        }
    }
}

test "attention: the scalar twin's bits, close to an f64 reference (GQA), identical for 1..3 threads" {
    const alloc = std.testing.allocator;
    const fill = @import("qdot.zig").testing.fill;
    // Group sizes 3, 5, 1, 8 and 4; head dims with and without a tail past 16
    // (and past the sums' column tiles); positions within one block and over several.
    const shapes = [_]Shape{
        .{ .n_head = 6, .n_head_kv = 2, .head_dim = 40, .n_kv = 19, .scale = 1.0 / @sqrt(40.0) },
        .{ .n_head = 10, .n_head_kv = 2, .head_dim = 136, .n_kv = 70, .scale = 1.0 / @sqrt(136.0) },
        .{ .n_head = 4, .n_head_kv = 4, .head_dim = 16, .n_kv = 1, .scale = 0.25 },
        .{ .n_head = 8, .n_head_kv = 1, .head_dim = 64, .n_kv = 33, .scale = 0.125 },
        // More scores than the stack buffer holds (8 × 2100 f32 > 64 KiB): malloc's.
        .{ .n_head = 8, .n_head_kv = 2, .head_dim = 16, .n_kv = 2100, .scale = 0.25 },
    };
    var worst = [2]f64{ 0, 0 };
    for (shapes, 0..) |s, si| {
        const q = try alloc.alloc(f32, s.n_head * s.head_dim);
        defer alloc.free(q);
        const n = s.n_kv * s.n_head_kv * s.head_dim;
        const kf = try alloc.alloc(f32, n);
        defer alloc.free(kf);
        const vf = try alloc.alloc(f32, n);
        defer alloc.free(vf);
        fill(q, 1 + si);
        fill(kf, 2 + si);
        fill(vf, 3 + si);
        const kh = try alloc.alloc(f16, n);
        defer alloc.free(kh);
        const vh = try alloc.alloc(f16, n);
        defer alloc.free(vh);
        for (kh, kf) |*d, x| d.* = @floatCast(x);
        for (vh, vf) |*d, x| d.* = @floatCast(x);
        const want = try alloc.alloc(f64, q.len);
        defer alloc.free(want);
        const same = try alloc.alloc(f32, q.len);
        defer alloc.free(same);
        const first = try alloc.alloc(f32, q.len);
        defer alloc.free(first);
        const got = try alloc.alloc(f32, q.len);
        defer alloc.free(got);
        for ([_]types.GgmlType{ .f32, .f16 }, 0..) |t, ti| {
            const kb: []const u8 = if (t == .f32) std.mem.sliceAsBytes(kf) else std.mem.sliceAsBytes(kh);
            const vb: []const u8 = if (t == .f32) std.mem.sliceAsBytes(vf) else std.mem.sliceAsBytes(vh);
            if (t == .f32) {
                try reference(f32, q, kf, vf, want, s);
                try twin(f32, q, kf, vf, same, s);
            } else {
                try reference(f16, q, kh, vh, want, s);
                try twin(f16, q, kh, vh, same, s);
            }
            try attention(null, t, q, kb, vb, first, s);
            try std.testing.expectEqualSlices(u32, @ptrCast(same), @ptrCast(first));
            for (want, first) |w, g| worst[ti] = @max(worst[ti], @abs(w - g) / (@abs(w) + 1));
            for (1..4) |n_threads| {
                const pool = try threads.Pool.create(alloc, n_threads);
                defer pool.destroy();
                try attention(pool, t, q, kb, vb, got, s);
                try std.testing.expectEqualSlices(u32, @ptrCast(first), @ptrCast(got));
            }
        }
    }
    // Measured 2.8e-7 and 3.6e-4: f32 sums; F16 rounds q and the
    // probabilities to f16 (2^-11 relative each).
    try std.testing.expect(worst[0] <= 1e-6);
    try std.testing.expect(worst[1] <= 1e-3);
}

test "attention: shape errors" {
    const s = Shape{ .n_head = 6, .n_head_kv = 2, .head_dim = 40, .n_kv = 19, .scale = 1.0 / @sqrt(40.0) };
    var q: [6 * 40]f32 = @splat(0);
    var kf: [19 * 2 * 40]f32 = @splat(0);
    var got: [q.len]f32 = undefined;
    const kb = std.mem.sliceAsBytes(&kf);
    try std.testing.expectError(error.LengthMismatch, attention(null, .f32, &q, kb[4..], kb, &got, s));
    try std.testing.expectError(error.Unsupported, attention(null, .q8_0, &q, kb, kb, &got, s));
    var bad = s;
    bad.n_head_kv = 4;
    try std.testing.expectError(error.InvalidArgument, attention(null, .f32, &q, kb, kb, &got, bad));
}
