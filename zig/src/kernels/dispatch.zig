//! Quantize, dequantize and matvec by GGML type id: the one place where a
//! type id meets its kernel file. Adding a type (e.g. the K-quants) is one
//! line in `Kernel` and in `withKernel`'s list (and, for a new activation format, one in `ActivationOf`).
//!
//! A matvec quantizes the activations once per call to the weight type's
//! activation format (Q8_0, Q8_1, Q8_K; F16 for F16 weights, BF16 for BF16
//! weights, f32 for F32 — GGML's `vec_dot_type`), then computes
//! one dot product per row, split by rows across the pool's threads.
const std = @import("std");
const status = @import("../c_api/status.zig");
const types = @import("types.zig");
const threads = @import("../threads.zig");

const GgmlType = types.GgmlType;
const Error = status.Error;

/// The kernel file of each known type.
fn Kernel(comptime t: GgmlType) type {
    return switch (t) {
        .f32 => @import("f32.zig"),
        .f16 => @import("f16.zig"),
        .bf16 => @import("bf16.zig"),
        .q4_0 => @import("q4_0.zig"),
        .q4_1 => @import("q4_1.zig"),
        .q5_0 => @import("q5_0.zig"),
        .q5_1 => @import("q5_1.zig"),
        .q8_0 => @import("q8_0.zig"),
        .q8_1 => @import("q8_1.zig"),
        .q2_k => @import("q2_k.zig"),
        .q3_k => @import("q3_k.zig"),
        .q4_k => @import("q4_k.zig"),
        .q5_k => @import("q5_k.zig"),
        .q6_k => @import("q6_k.zig"),
        .q8_k => @import("q8_k.zig"),
        _ => @compileError("no kernel for this type id"),
    };
}

/// The module that quantizes activations of block type `A`.
fn ActivationOf(comptime A: type) type {
    if (A == f32) return @import("f32.zig");
    if (A == f16) return @import("f16.zig");
    // BF16 has no Zig float type: its elements are u16 bit patterns.
    if (A == u16) return @import("bf16.zig");
    if (A == @import("q8_0.zig").Block) return @import("q8_0.zig");
    if (A == @import("q8_1.zig").Block) return @import("q8_1.zig");
    if (A == @import("q8_k.zig").Block) return @import("q8_k.zig");
    @compileError("no activation quantizer for " ++ @typeName(A));
}

/// Calls `body(K)` with the kernel of `t` (known at compile time inside).
fn withKernel(t: GgmlType, op: []const u8, comptime body: anytype, args: anytype) Error!void {
    switch (t) {
        inline .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .q2_k, .q3_k, .q4_k, .q5_k, .q6_k, .q8_k => |ct| {
            const K = comptime Kernel(ct);
            comptime {
                std.debug.assert(@sizeOf(K.Block) == ct.blockBytes().?);
                std.debug.assert(K.block_elems == ct.blockElems().?);
            }
            return @call(.auto, body, .{K} ++ args);
        },
        _ => return status.fail(error.InvalidArgument, "{s}: unknown GGML type id {d}", .{ op, @intFromEnum(t) }),
    }
}

fn blocks(comptime B: type, bytes: []const u8, name: []const u8) Error![]const B {
    if (@intFromPtr(bytes.ptr) % @alignOf(B) != 0)
        return status.fail(error.InvalidArgument, "{s} is not aligned to {d} bytes", .{ name, @alignOf(B) });
    const p: [*]const B = @ptrCast(@alignCast(bytes.ptr));
    return p[0 .. bytes.len / @sizeOf(B)];
}

fn blocksMut(comptime B: type, bytes: []u8, name: []const u8) Error![]B {
    return @constCast(try blocks(B, bytes, name));
}

/// Bytes of `n` elements of `t`, with the reason when `n` does not fit.
fn bytesFor(t: GgmlType, n: usize, op: []const u8, what: []const u8) Error!usize {
    const be = t.blockElems().?;
    if (n % be != 0)
        return status.fail(error.InvalidArgument, "{s} {s}: {s} = {d} is not a multiple of the block size {d}", .{ op, @tagName(t), what, n, be });
    return t.rowBytes(n) orelse status.fail(error.InvalidArgument, "{s} {s}: {s} = {d} overflows", .{ op, @tagName(t), what, n });
}

/// f32 → `t`: `dst` must be exactly the bytes of `src.len` elements.
pub fn quantize(t: GgmlType, src: []const f32, dst: []u8) Error!void {
    return withKernel(t, "quantize", quantizeAs, .{ t, src, dst });
}

fn quantizeAs(comptime K: type, t: GgmlType, src: []const f32, dst: []u8) Error!void {
    const need = try bytesFor(t, src.len, "quantize", "n");
    if (dst.len != need)
        return status.fail(error.LengthMismatch, "quantize {s}: dst has {d} bytes, expected {d} for n = {d}", .{ @tagName(t), dst.len, need, src.len });
    if (K.block_elems > 1) {
        for (src, 0..) |v, i| if (!std.math.isFinite(v))
            return status.fail(error.InvalidArgument, "quantize {s}: src[{d}] is {d}; quantized types need finite values", .{ @tagName(t), i, v });
        if (@hasDecl(K, "max_abs")) {
            for (src, 0..) |v, i| if (@abs(v) > K.max_abs)
                return status.fail(error.InvalidArgument, "quantize {s}: src[{d}] is {d}, beyond ±{d}, the largest magnitude whose block scales fit in f16", .{ @tagName(t), i, v, K.max_abs });
        }
    }
    K.quantize(src, try blocksMut(K.Block, dst, "dst"));
}

/// `t` → f32: `src` must be exactly the bytes of `dst.len` elements.
pub fn dequantize(t: GgmlType, src: []const u8, dst: []f32) Error!void {
    return withKernel(t, "dequantize", dequantizeAs, .{ t, src, dst });
}

fn dequantizeAs(comptime K: type, t: GgmlType, src: []const u8, dst: []f32) Error!void {
    const need = try bytesFor(t, dst.len, "dequantize", "n");
    if (src.len != need)
        return status.fail(error.LengthMismatch, "dequantize {s}: src has {d} bytes, expected {d} for n = {d}", .{ @tagName(t), src.len, need, dst.len });
    K.dequantize(try blocks(K.Block, src, "src"), dst);
}

/// y = W·x, W `rows × cols` of type `t` (row-major, `rows` rows of rowBytes(cols)).
pub fn matvec(pool: ?*threads.Pool, t: GgmlType, w: []const u8, x: []const f32, y: []f32, rows: usize, cols: usize) Error!void {
    return withKernel(t, "matvec", mulAs, .{ pool, t, "matvec", w, x, y, rows, cols, 1 });
}

/// Y[i] = W·X[i] for `n_tokens` tokens: `x` holds the tokens' activations one
/// after another (`n_tokens × cols`), `y` their outputs (`n_tokens × rows`).
/// Every Y[i][r] is the same dot product `matvec` computes for X[i], bit for bit;
/// the weights are read from memory once for all tokens (see `tile_bytes`).
pub fn matmul(pool: ?*threads.Pool, t: GgmlType, w: []const u8, x: []const f32, y: []f32, rows: usize, cols: usize, n_tokens: usize) Error!void {
    return withKernel(t, "matmul", mulAs, .{ pool, t, "matmul", w, x, y, rows, cols, n_tokens });
}

/// A thread works on a tile of rows (up to `tile_bytes` of weights, kept in
/// L2) for a block of tokens (up to `act_tile_bytes` of activations, kept in
/// L1), each weight row dotted with the block's tokens in groups of
/// `token_group` (see `tileTokens`) and the rest one at a time. Measured on
/// the 1 MiB-L2 dev machine (bench/matmul_bench.ts): 2x over 64 KiB row tiles
/// with one token at a time for Q4_K and F16 at T = 64.
const tile_bytes = 256 * 1024;
const act_tile_bytes = 16 * 1024;

/// Tokens per `dotN` call for the weight types that have one: each weight
/// block is unpacked once for the group (the rest go through `dot`).
const token_group = 4;

/// Tokens per block: as many as fit in `fit`, at least one, and with `dotN`
/// a whole number of groups (at least one).
fn tileTokens(grouped: bool, fit: usize) usize {
    if (!grouped) return @max(1, fit);
    return @max(token_group, fit / token_group * token_group);
}

/// The row tiles of one product, ready to run: weights, activations already
/// in the weight type's vec_dot format, outputs, and the tiling (see `tile_bytes`).
fn Tiles(comptime K: type) type {
    return struct {
        w: []const K.Block,
        a: []const K.Activation,
        y: []f32,
        nb: usize,
        na: usize,
        rows: usize,
        n_tokens: usize,
        tile_rows: usize,
        tile_tokens: usize,

        /// Row `r` for the `n` tokens from `first`, with one `K.dotN` call.
        inline fn dots(c: *const @This(), comptime n: usize, wr: []const K.Block, r: usize, first: usize) void {
            var as: [n][]const K.Activation = undefined;
            for (&as, first..) |*s, k| s.* = c.a[k * c.na ..][0..c.na];
            for (K.dotN(n, wr, &as), first..) |v, k| c.y[k * c.rows + r] = v;
        }

        /// Rows `begin..end` for every token: each output is one `K.dot` (or the
        /// same bits from `K.dotN`), so any split of the rows gives the same `y`.
        fn run(p: *const anyopaque, begin: usize, end: usize) void {
            const c: *const @This() = @ptrCast(@alignCast(p));
            var r0 = begin;
            while (r0 < end) : (r0 += c.tile_rows) {
                const r1 = @min(end, r0 + c.tile_rows);
                var t0: usize = 0;
                while (t0 < c.n_tokens) : (t0 += c.tile_tokens) {
                    const t1 = @min(c.n_tokens, t0 + c.tile_tokens);
                    for (r0..r1) |r| {
                        const wr = c.w[r * c.nb ..][0..c.nb];
                        var i = t0;
                        if (@hasDecl(K, "dotN")) {
                            while (i + token_group <= t1) : (i += token_group) c.dots(token_group, wr, r, i);
                            // A tail of 2 or 3 tokens also shares each unpacked block.
                            switch (t1 - i) {
                                inline 2...token_group - 1 => |n| {
                                    c.dots(n, wr, r, i);
                                    i += n;
                                },
                                else => {},
                            }
                        }
                        for (i..t1) |k| c.y[k * c.rows + r] = K.dot(wr, c.a[k * c.na ..][0..c.na]);
                    }
                }
            }
        }
    };
}

/// Activations already converted for an earlier product of the same call:
/// the same `x` in the same format is converted once (e.g. an expert's gate
/// and up projections, or every expert's gate and up for one token).
const Converted = struct { x: []const f32, format: []const u8, bytes: []const u8 };

/// Checks one product's shapes and converts its activations (or reuses a
/// conversion in `done`), returning its tiles allocated from `alloc`.
fn prepareAs(comptime K: type, alloc: std.mem.Allocator, done: *std.ArrayListUnmanaged(Converted), t: GgmlType, op: []const u8, w: []const u8, x: []const f32, y: []f32, rows: usize, cols: usize, n_tokens: usize) Error!*const Tiles(K) {
    const name = @tagName(t);
    _ = std.math.mul(usize, rows, cols) catch
        return status.fail(error.InvalidArgument, "{s} {s}: rows {d} x cols {d} overflows", .{ op, name, rows, cols });
    const row_bytes = try bytesFor(t, cols, op, "cols");
    const need = std.math.mul(usize, rows, row_bytes) catch
        return status.fail(error.InvalidArgument, "{s} {s}: rows {d} x row bytes {d} overflows", .{ op, name, rows, row_bytes });
    if (w.len != need)
        return status.fail(error.LengthMismatch, "{s} {s}: w has {d} bytes, expected rows*rowBytes = {d}*{d} = {d}", .{ op, name, w.len, rows, row_bytes, need });
    const x_need = std.math.mul(usize, n_tokens, cols) catch
        return status.fail(error.InvalidArgument, "{s} {s}: n_tokens {d} x cols {d} overflows", .{ op, name, n_tokens, cols });
    const y_need = std.math.mul(usize, n_tokens, rows) catch
        return status.fail(error.InvalidArgument, "{s} {s}: n_tokens {d} x rows {d} overflows", .{ op, name, n_tokens, rows });
    if (x.len != x_need)
        return status.fail(error.LengthMismatch, "{s} {s}: x has {d} elements, expected n_tokens*cols = {d}*{d} = {d}", .{ op, name, x.len, n_tokens, cols, x_need });
    if (y.len != y_need)
        return status.fail(error.LengthMismatch, "{s} {s}: y has {d} elements, expected n_tokens*rows = {d}*{d} = {d}", .{ op, name, y.len, n_tokens, rows, y_need });
    const wb = try blocks(K.Block, w, "w");

    // The activations in the weight type's vec_dot format, once per token:
    // Q8_0/Q8_1/Q8_K blocks, f16 for F16 weights, bf16 for BF16, a plain copy
    // for F32. The buffer starts on a cache line, so the float kernels' loads
    // never straddle two.
    const A = ActivationOf(K.Activation);
    const a_per_token = cols / A.block_elems;
    const format = @typeName(K.Activation);
    const act: []const K.Activation = for (done.items) |c| {
        if (c.x.ptr == x.ptr and c.x.len == x.len and std.mem.eql(u8, c.format, format))
            break @as([*]const K.Activation, @ptrCast(@alignCast(c.bytes.ptr)))[0 .. c.bytes.len / @sizeOf(K.Activation)];
    } else blk: {
        // Float formats round each value on its own (NaN and ±inf carry through, as GGML).
        if (A.block_elems > 1) for (x, 0..) |v, i| if (!std.math.isFinite(v))
            return status.fail(error.InvalidArgument, "{s} {s}: x[{d}] is {d}; activations must be finite", .{ op, name, i, v });
        const buf = alloc.alignedAlloc(K.Activation, 64, a_per_token * n_tokens) catch
            return status.fail(error.OutOfMemory, "{s} {s}: no memory for {d} activation blocks", .{ op, name, a_per_token * n_tokens });
        if (K.Activation == f32) {
            @memcpy(buf, x);
        } else for (0..n_tokens) |i| A.quantize(x[i * cols ..][0..cols], buf[i * a_per_token ..][0..a_per_token]);
        done.append(alloc, .{ .x = x, .format = format, .bytes = std.mem.sliceAsBytes(buf) }) catch
            return status.fail(error.OutOfMemory, "{s} {s}: no memory to track activations", .{ op, name });
        break :blk buf;
    };
    const tiles = alloc.create(Tiles(K)) catch
        return status.fail(error.OutOfMemory, "{s} {s}: no memory for its tiles", .{ op, name });
    tiles.* = .{
        .w = wb,
        .a = act,
        .y = y,
        .nb = cols / K.block_elems,
        .na = a_per_token,
        .rows = rows,
        .n_tokens = n_tokens,
        .tile_rows = @max(1, tile_bytes / @max(1, row_bytes)),
        .tile_tokens = tileTokens(@hasDecl(K, "dotN"), act_tile_bytes / @max(1, a_per_token * @sizeOf(K.Activation))),
    };
    return tiles;
}

/// One product of `matmulMany`: `y = W·x` for `n_tokens` tokens, as `matmul`'s arguments.
pub const Mul = struct {
    t: GgmlType,
    w: []const u8,
    x: []const f32,
    y: []f32,
    rows: usize,
    cols: usize,
    n_tokens: usize,
};

/// One product's rows in the concatenation `matmulMany` splits over the threads.
const Part = struct { tiles: *const anyopaque, run: *const fn (*const anyopaque, usize, usize) void, first: usize, rows: usize };

/// Prepares `m` as part `p` (rows from `first`); see `prepareAs`.
fn prepareMul(comptime K: type, alloc: std.mem.Allocator, done: *std.ArrayListUnmanaged(Converted), op: []const u8, m: Mul, first: usize, p: *Part) Error!void {
    if (comptime !@hasDecl(K, "dot")) return notWeights(op, m.t);
    const tiles = try prepareAs(K, alloc, done, m.t, op, m.w, m.x, m.y, m.rows, m.cols, m.n_tokens);
    p.* = .{ .tiles = tiles, .run = Tiles(K).run, .first = first, .rows = if (m.n_tokens == 0) 0 else m.rows };
}

/// Every product of `muls` in one pass over the pool: their rows are laid end
/// to end and split into contiguous ranges, one per thread, so a layer's
/// small matrices (q/k/v, or the gate and up projections of all its routed
/// experts) cost one dispatch instead of one each. Activations shared by
/// several products (the same `x` slice and format) are converted once. Each
/// output is bit-identical to `matmul` of its product alone. The outputs must
/// not overlap one another (an `x` may be any product's `y`: activations are
/// converted before any output is written).
pub fn matmulMany(pool: ?*threads.Pool, muls: []const Mul) Error!void {
    const op = "matmul_many";
    var fallback = std.heap.stackFallback(64 * 1024, std.heap.page_allocator);
    var arena = std.heap.ArenaAllocator.init(fallback.get());
    defer arena.deinit();
    const alloc = arena.allocator();
    try checkDisjoint(alloc, muls);
    const parts = alloc.alloc(Part, muls.len) catch
        return status.fail(error.OutOfMemory, "{s}: no memory for {d} products", .{ op, muls.len });
    var done: std.ArrayListUnmanaged(Converted) = .empty;
    var total: usize = 0;
    for (muls, parts) |m, *p| {
        try withKernel(m.t, op, prepareMul, .{ alloc, &done, op, m, total, p });
        total += p.rows;
    }
    const Many = struct {
        parts: []const Part,
        fn run(ctx: *const anyopaque, begin: usize, end: usize) void {
            const c: *const @This() = @ptrCast(@alignCast(ctx));
            for (c.parts) |p| {
                const b = @max(begin, p.first);
                const e = @min(end, p.first + p.rows);
                if (b < e) p.run(p.tiles, b - p.first, e - p.first);
            }
        }
    };
    const ctx = Many{ .parts = parts };
    try runJob(pool, op, .{ .ctx = &ctx, .func = Many.run, .rows = total });
}

/// Fails if two products' outputs share an element (their threads would race).
fn checkDisjoint(alloc: std.mem.Allocator, muls: []const Mul) Error!void {
    const order = alloc.alloc(usize, muls.len) catch
        return status.fail(error.OutOfMemory, "matmul_many: no memory for {d} products", .{muls.len});
    for (order, 0..) |*o, i| o.* = i;
    const Cmp = struct {
        fn lessThan(ms: []const Mul, a: usize, b: usize) bool {
            return @intFromPtr(ms[a].y.ptr) < @intFromPtr(ms[b].y.ptr);
        }
    };
    std.sort.pdq(usize, order, muls, Cmp.lessThan);
    var i: usize = 1;
    while (i < order.len) : (i += 1) {
        const a = muls[order[i - 1]].y;
        const b = muls[order[i]].y;
        if (a.len > 0 and b.len > 0 and @intFromPtr(a.ptr) + a.len * @sizeOf(f32) > @intFromPtr(b.ptr))
            return status.fail(error.InvalidArgument, "matmul_many: the outputs of products {d} and {d} overlap", .{ order[i - 1], order[i] });
    }
}

fn runJob(pool: ?*threads.Pool, op: []const u8, job: threads.Job) Error!void {
    if (pool) |p| {
        p.run(job) catch return status.fail(error.Busy, "{s}: the thread pool is running another call", .{op});
    } else job.func(job.ctx, 0, job.rows);
}

/// The error for an activation format (Q8_1, Q8_K) given as a weight type.
fn notWeights(op: []const u8, t: GgmlType) Error {
    return status.fail(error.Unsupported, "{s}: {s} is an activation format, not a weight type", .{ op, @tagName(t) });
}

fn mulAs(comptime K: type, pool: ?*threads.Pool, t: GgmlType, op: []const u8, w: []const u8, x: []const f32, y: []f32, rows: usize, cols: usize, n_tokens: usize) Error!void {
    if (comptime !@hasDecl(K, "dot")) return notWeights(op, t);
    var fallback = std.heap.stackFallback(32 * 1024, std.heap.page_allocator);
    var arena = std.heap.ArenaAllocator.init(fallback.get());
    defer arena.deinit();
    var done: std.ArrayListUnmanaged(Converted) = .empty;
    const tiles = try prepareAs(K, arena.allocator(), &done, t, op, w, x, y, rows, cols, n_tokens);
    try runJob(pool, op, .{ .ctx = tiles, .func = Tiles(K).run, .rows = if (n_tokens == 0) 0 else rows });
}

test "dispatch: matvec equals per-row dots on quantized activations, for any thread count" {
    const q4_0 = @import("q4_0.zig");
    const q8_0 = @import("q8_0.zig");
    const rows = 37;
    const cols = 96;
    var wf: [rows * cols]f32 = undefined;
    var x: [cols]f32 = undefined;
    @import("qdot.zig").testing.fill(&wf, 1);
    @import("qdot.zig").testing.fill(&x, 2);
    var wq: [rows * cols / 32]q4_0.Block = undefined;
    try quantize(.q4_0, &wf, std.mem.sliceAsBytes(&wq));
    var xq: [cols / 32]q8_0.Block = undefined;
    q8_0.quantize(&x, &xq);
    var want: [rows]f32 = undefined;
    for (&want, 0..) |*o, r| o.* = q4_0.dot(wq[r * 3 ..][0..3], &xq);
    var y: [rows]f32 = undefined;
    try matvec(null, .q4_0, std.mem.sliceAsBytes(&wq), &x, &y, rows, cols);
    try std.testing.expectEqual(want, y);
    for (1..4) |n| {
        const pool = try threads.Pool.create(std.testing.allocator, n);
        defer pool.destroy();
        @memset(&y, 0);
        try matvec(pool, .q4_0, std.mem.sliceAsBytes(&wq), &x, &y, rows, cols);
        try std.testing.expectEqual(want, y);
    }
}

test "dispatch: matmul equals matvec per token, bit for bit, for every weight type, odd token counts, tile tails and 1..3 threads" {
    const alloc = std.testing.allocator;
    const fill = @import("qdot.zig").testing.fill;
    // Wide enough rows that both tilings have tails: e.g. Q8_0 60 rows × 4
    // tokens (one dotN group per token block), F32 16 rows × 1 token. With
    // 512 columns a token block holds several groups: 11 tokens are two
    // groups of 4 and a tail of 3 in one block.
    const rows = 301;
    const cols = 4096;
    const max_tokens = 11;
    const wf = try alloc.alloc(f32, rows * cols);
    defer alloc.free(wf);
    fill(wf, 11);
    const x = try alloc.alloc(f32, max_tokens * cols);
    defer alloc.free(x);
    fill(x, 12);
    const wq = try alloc.alloc(u8, rows * cols * 4);
    defer alloc.free(wq);
    const y = try alloc.alloc(f32, max_tokens * rows);
    defer alloc.free(y);
    var want: [rows]f32 = undefined;
    const pools = [_]*threads.Pool{ try threads.Pool.create(alloc, 2), try threads.Pool.create(alloc, 3) };
    defer for (pools) |p| p.destroy();
    for ([_]usize{ cols, 512 }) |c| {
        for ([_]GgmlType{ .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_k, .q3_k, .q4_k, .q5_k, .q6_k }) |t| {
            const w = wq[0 .. rows * t.rowBytes(c).?];
            try quantize(t, wf[0 .. rows * c], w);
            for ([_]usize{ 1, 2, 7, 11 }) |n| {
                for ([_]?*threads.Pool{ null, pools[0], pools[1] }) |pool| {
                    @memset(y, std.math.nan(f32));
                    try matmul(pool, t, w, x[0 .. n * c], y[0 .. n * rows], rows, c, n);
                    for (0..n) |i| {
                        try matvec(null, t, w, x[i * c ..][0..c], &want, rows, c);
                        try std.testing.expectEqualSlices(u32, @ptrCast(&want), @ptrCast(y[i * rows ..][0..rows]));
                    }
                }
            }
        }
    }
    const q8 = wq[0 .. rows * 4352];
    try std.testing.expectError(error.LengthMismatch, matmul(null, .q8_0, q8, x[0 .. 2 * cols], y[0 .. 3 * rows], rows, cols, 2));
    try std.testing.expect(std.mem.indexOf(u8, status.lastMessage(), "y has 903 elements, expected n_tokens*rows = 2*301 = 602") != null);
    try std.testing.expectError(error.LengthMismatch, matmul(null, .q8_0, q8, x[0 .. 2 * cols], y[0 .. 2 * rows], rows, cols, 3));
    try std.testing.expect(std.mem.indexOf(u8, status.lastMessage(), "x has 8192 elements, expected n_tokens*cols = 3*4096 = 12288") != null);
    try matmul(null, .q8_0, q8, x[0..0], y[0..0], rows, cols, 0);
}

test "dispatch: matmulMany equals each matmul alone, bit for bit: mixed types and shapes, shared and distinct x, 1..3 threads, errors" {
    const alloc = std.testing.allocator;
    const fill = @import("qdot.zig").testing.fill;
    // Products as a layer has them: two "experts" of different types sharing one x (gate and up), a
    // down projection whose x is another product's output buffer, and a product with no tokens.
    const Spec = struct { t: GgmlType, rows: usize, cols: usize, n: usize, x: usize };
    const specs = [_]Spec{
        .{ .t = .q4_k, .rows = 67, .cols = 512, .n = 1, .x = 0 },
        .{ .t = .q4_k, .rows = 67, .cols = 512, .n = 1, .x = 0 },
        .{ .t = .q8_0, .rows = 33, .cols = 512, .n = 1, .x = 0 },
        .{ .t = .q6_k, .rows = 130, .cols = 256, .n = 3, .x = 1 },
        .{ .t = .f16, .rows = 5, .cols = 64, .n = 2, .x = 2 },
        .{ .t = .q4_0, .rows = 9, .cols = 64, .n = 0, .x = 3 },
    };
    var xs: [4][]f32 = undefined;
    for (&xs, 0..) |*x, i| {
        x.* = try alloc.alloc(f32, 3 * 512);
        fill(x.*, @intCast(20 + i));
    }
    defer for (xs) |x| alloc.free(x);
    var ws: [specs.len][]u8 = undefined;
    var ys: [specs.len][]f32 = undefined;
    var want: [specs.len][]f32 = undefined;
    var muls: [specs.len]Mul = undefined;
    for (specs, 0..) |sp, i| {
        const wf = try alloc.alloc(f32, sp.rows * sp.cols);
        defer alloc.free(wf);
        fill(wf, @intCast(30 + i));
        ws[i] = try alloc.alloc(u8, sp.rows * sp.t.rowBytes(sp.cols).?);
        try quantize(sp.t, wf, ws[i]);
        ys[i] = try alloc.alloc(f32, sp.n * sp.rows);
        want[i] = try alloc.alloc(f32, sp.n * sp.rows);
        const x = xs[sp.x][0 .. sp.n * sp.cols];
        try matmul(null, sp.t, ws[i], x, want[i], sp.rows, sp.cols, sp.n);
        muls[i] = .{ .t = sp.t, .w = ws[i], .x = x, .y = ys[i], .rows = sp.rows, .cols = sp.cols, .n_tokens = sp.n };
    }
    defer for (ws, ys, want) |w, y, v| {
        alloc.free(w);
        alloc.free(y);
        alloc.free(v);
    };
    const pools = [_]*threads.Pool{ try threads.Pool.create(alloc, 2), try threads.Pool.create(alloc, 3) };
    defer for (pools) |p| p.destroy();
    for ([_]?*threads.Pool{ null, pools[0], pools[1] }) |pool| {
        for (ys) |y| @memset(y, std.math.nan(f32));
        try matmulMany(pool, &muls);
        for (want, ys) |v, y| try std.testing.expectEqualSlices(u32, @ptrCast(v), @ptrCast(y));
    }
    // Outputs that overlap would race: refused before anything runs.
    var bad = muls;
    bad[1].y = ys[0];
    try std.testing.expectError(error.InvalidArgument, matmulMany(null, &bad));
    try std.testing.expect(std.mem.indexOf(u8, status.lastMessage(), "outputs of products") != null);
    bad = muls;
    bad[3].x = xs[1][0..7];
    try std.testing.expectError(error.LengthMismatch, matmulMany(pools[0], &bad));
    try std.testing.expect(std.mem.indexOf(u8, status.lastMessage(), "x has 7 elements") != null);
    try matmulMany(pools[0], &.{});
}

test "dispatch: F16 and BF16 weights multiply activations rounded to f16 / bf16, as GGML's vec_dot_type" {
    const f16k = @import("f16.zig");
    const bf16k = @import("bf16.zig");
    const f32k = @import("f32.zig");
    const cols = 256;
    var wf: [cols]f32 = undefined;
    var x: [cols]f32 = undefined;
    @import("qdot.zig").testing.fill(&wf, 3);
    @import("qdot.zig").testing.fill(&x, 4);
    var y: [1]f32 = undefined;

    var w: [cols]f16 = undefined;
    var xr: [cols]f16 = undefined;
    f16k.quantize(&wf, &w);
    f16k.quantize(&x, &xr);
    var ww: [cols]f32 = undefined;
    f16k.dequantize(&w, &ww);
    try matvec(null, .f16, std.mem.sliceAsBytes(&w), &x, &y, 1, cols);
    try std.testing.expectEqual(f16k.dot(&w, &xr), y[0]);
    try std.testing.expect(f32k.dot(&ww, &x) != y[0]);

    var wb: [cols]u16 = undefined;
    var xb: [cols]u16 = undefined;
    bf16k.quantize(&wf, &wb);
    bf16k.quantize(&x, &xb);
    bf16k.dequantize(&wb, &ww);
    try matvec(null, .bf16, std.mem.sliceAsBytes(&wb), &x, &y, 1, cols);
    try std.testing.expectEqual(bf16k.dot(&wb, &xb), y[0]);
    try std.testing.expect(@abs(f32k.dot(&ww, &x) - y[0]) > 1e-5);
}

test "dispatch: shape, type and value errors" {
    var y: [2]f32 = undefined;
    const x = [_]f32{0} ** 32;
    const w = [_]u8{0} ** 36;
    try std.testing.expectError(error.LengthMismatch, matvec(null, .q4_0, w[0..35], &x, &y, 2, 32));
    try std.testing.expect(std.mem.indexOf(u8, status.lastMessage(), "expected rows*rowBytes = 2*18 = 36") != null);
    try std.testing.expectError(error.InvalidArgument, matvec(null, .q4_0, &w, x[0..16], &y, 2, 16));
    try std.testing.expect(std.mem.indexOf(u8, status.lastMessage(), "not a multiple of the block size 32") != null);
    try std.testing.expectError(error.Unsupported, matvec(null, .q8_1, &w, &x, y[0..1], 1, 32));
    try std.testing.expectError(error.InvalidArgument, matvec(null, @enumFromInt(77), &w, &x, &y, 2, 32));
    try std.testing.expect(std.mem.indexOf(u8, status.lastMessage(), "unknown GGML type id 77") != null);
    var nan = x;
    nan[3] = std.math.nan(f32);
    var dst: [34]u8 align(2) = undefined;
    try std.testing.expectError(error.InvalidArgument, quantize(.q8_0, &nan, &dst));
    try std.testing.expect(std.mem.indexOf(u8, status.lastMessage(), "src[3] is nan") != null);
    try std.testing.expectError(error.LengthMismatch, quantize(.q8_0, &x, dst[0..33]));
}
