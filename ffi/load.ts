/**
 * Finding and opening libedgemoe: `$EDGEMOE_LIB` (or an explicit path), else
 * the local build in zig/zig-out/lib (built from source with the pinned Zig if
 * missing). On x86-64 the widest variant the CPU supports is chosen at run
 * time. The ABI version is checked right after opening. A failure lists every
 * path tried and why each was refused.
 *
 * @module
 */
import { EdgeMoeError } from "../src/errors.ts";
import { envGet, isFile as exists, LIB_DIR, ZIG_DIR, zigBuild } from "./build.ts";
import { ABI_VERSION, CPU_FEATURE_BITS, symbols } from "./symbols.ts";

/** How to find the library. */
export interface LoadOptions {
  /** Use exactly this file (overrides `$EDGEMOE_LIB`). */
  path?: string;
  /** Build from source when no local build exists (default true). */
  build?: boolean;
  /** Pick this variant instead of the widest supported: "base" or "avx512". */
  variant?: "base" | "avx512";
}

/** An opened library and where it came from. */
export interface OpenedLibrary {
  dl: Deno.DynamicLibrary<typeof symbols>;
  path: string;
}

const ELF_MACHINES: Readonly<Record<number, string>> = { 62: "x86_64", 183: "aarch64", 3: "x86", 40: "arm" };

/** Throws `permission_denied` unless FFI is allowed. */
export function requireFfiPermission(): void {
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    throw new EdgeMoeError(
      "permission_denied",
      "open native library",
      "edgemoe's kernels live in a native library and need FFI: run with --allow-ffi (deno run --allow-ffi ...), or use `deno task edgemoe`, which grants it",
    );
  }
}

/** Checks the ELF header of `path` against this process's architecture. */
function checkElf(path: string): void {
  let head: Uint8Array;
  try {
    const f = Deno.openSync(path, { read: true });
    try {
      head = new Uint8Array(20);
      const n = f.readSync(head) ?? 0;
      head = head.subarray(0, n);
    } finally {
      f.close();
    }
  } catch (e) {
    throw new EdgeMoeError("library_not_found", "open native library", `cannot read ${path}`, { cause: e });
  }
  if (head.length < 20 || head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) {
    throw new EdgeMoeError("library_not_found", "open native library", `${path} is not an ELF shared library`);
  }
  const machine = head[18] | (head[19] << 8);
  const found = ELF_MACHINES[machine] ?? `ELF machine ${machine}`;
  if (found !== Deno.build.arch) {
    throw new EdgeMoeError(
      "library_arch_mismatch",
      "open native library",
      `${path} is built for ${found}, but this process runs on ${Deno.build.arch}; rebuild it for this machine with \`deno task build\` or point EDGEMOE_LIB at a ${Deno.build.arch} build`,
    );
  }
}

/** Opens `path` and checks its ABI version. */
export function openChecked(path: string): OpenedLibrary {
  if (!exists(path)) throw new EdgeMoeError("library_not_found", "open native library", `${path} does not exist`);
  checkElf(path);
  // Open first with only the version symbol: an older or newer library may lack
  // (or add) other symbols, and the version says so more clearly than dlopen.
  let probe: Deno.DynamicLibrary<{ emoe_abi_version: typeof symbols.emoe_abi_version }>;
  try {
    probe = Deno.dlopen(path, { emoe_abi_version: symbols.emoe_abi_version });
  } catch (e) {
    throw new EdgeMoeError(
      "library_not_found",
      "open native library",
      `dlopen(${path}) failed: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  const abi = probe.symbols.emoe_abi_version();
  probe.close();
  if (abi !== ABI_VERSION) {
    throw new EdgeMoeError(
      "abi_mismatch",
      "open native library",
      `${path} has ABI version ${abi}, these bindings need ${ABI_VERSION}; rebuild it with \`deno task build\``,
    );
  }
  try {
    return { dl: Deno.dlopen(path, symbols), path };
  } catch (e) {
    throw new EdgeMoeError(
      "library_not_found",
      "open native library",
      `dlopen(${path}) failed: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
}

function has(features: bigint, names: readonly (keyof typeof CPU_FEATURE_BITS)[]): boolean {
  return names.every((n) => (features >> BigInt(CPU_FEATURE_BITS[n])) & 1n);
}

/** Features the library reports for this CPU. */
export function cpuFeaturesOf(dl: OpenedLibrary["dl"]): bigint {
  const out = new BigUint64Array(1);
  if (dl.symbols.emoe_cpu_features(out) !== 0) return 0n;
  return out[0];
}

const AVX512_NEEDS = ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512vnni", "avx512bf16"] as const;

/**
 * Finds, opens and ABI-checks libedgemoe.
 *
 * @throws {EdgeMoeError} `permission_denied`, `library_not_found` (listing every
 * path tried), `library_arch_mismatch` or `abi_mismatch`.
 */
export function openNativeLibrary(opts: LoadOptions = {}): OpenedLibrary {
  requireFfiPermission();
  const explicit = opts.path ?? envGet("EDGEMOE_LIB");
  if (explicit) {
    try {
      return openChecked(explicit);
    } catch (e) {
      const src = opts.path ? "the path given" : "EDGEMOE_LIB";
      if (e instanceof EdgeMoeError) throw new EdgeMoeError(e.code, e.op, `${e.message} (from ${src})`, { cause: e });
      throw e;
    }
  }
  const tried: string[] = [];
  if (LIB_DIR.protocol !== "file:") {
    throw new EdgeMoeError(
      "library_not_found",
      "open native library",
      `edgemoe was loaded from ${LIB_DIR.href}, where no native library can be built; set EDGEMOE_LIB to a libedgemoe.so (build one from a clone with \`deno task build\`)`,
    );
  }
  const base = new URL("libedgemoe.so", LIB_DIR).pathname;
  const wide = new URL("libedgemoe-avx512.so", LIB_DIR).pathname;
  if (!exists(base)) {
    tried.push(`${base}: not built`);
    if (opts.build !== false && exists(new URL("build.zig", ZIG_DIR).pathname)) {
      try {
        zigBuild();
      } catch (e) {
        tried.push(`build from source in ${ZIG_DIR.pathname}: ${(e as Error).message}`);
      }
    }
  }
  if (!exists(base)) {
    throw new EdgeMoeError(
      "library_not_found",
      "open native library",
      `no usable libedgemoe; tried:\n  EDGEMOE_LIB: not set\n  ${
        tried.join("\n  ")
      }\nfix: run \`./dev build\` (or \`deno task build\`), or set EDGEMOE_LIB`,
    );
  }
  const lib = openChecked(base);
  const wantWide = opts.variant === "avx512" ||
    (opts.variant === undefined && Deno.build.arch === "x86_64" && has(cpuFeaturesOf(lib.dl), AVX512_NEEDS));
  if (!wantWide || !exists(wide)) return lib;
  const widened = openChecked(wide);
  const ok = new Uint32Array(1);
  if (widened.dl.symbols.emoe_build_supported(ok) !== 0 || ok[0] !== 1) {
    widened.dl.close();
    if (opts.variant === "avx512") {
      lib.dl.close();
      throw new EdgeMoeError("unsupported", "open native library", `this CPU cannot run ${wide}`);
    }
    return lib;
  }
  lib.dl.close();
  return widened;
}
