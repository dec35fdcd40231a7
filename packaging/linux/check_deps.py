"""Which system libraries does the bundle need, and does the .deb's Depends cover them?

    python packaging/linux/check_deps.py BUNDLE_DIR CONTROL_FILE

Reads the NEEDED entries of every ELF file in the bundle (readelf, from binutils), drops the libraries the
bundle carries itself, finds the Debian package that provides each remaining one on this (build) machine
(dpkg -S), and fails if a package is not in the control file's Depends. Qt plugins are ELF files inside the
bundle too, so what the xcb platform plugin loads is covered, although the executable never links it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
# Provided by the dynamic loader / libc6 (Depends: libc6), or virtual names without a file of their own.
LIBC_SONAMES = re.compile(r"^(ld-linux.*|libc|libm|libdl|libpthread|librt|libutil|libresolv|libanl)\.so")
# Debian packages of libraries that may be missing on the build machine (dpkg -S cannot answer for them).
KNOWN_PACKAGES = {
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
    "libgtk-3.so.0": "libgtk-3-0",
    "libgdk-3.so.0": "libgtk-3-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libxcb.so.1": "libxcb1",
    "libstdc++.so.6": "libstdc++6",
    "libgcc_s.so.1": "libgcc-s1",
}
# The NVIDIA driver's own libraries: installed with the driver (distribution packages with various names, or
# NVIDIA's installer), loaded by torch only when CUDA is used. Never a package dependency.
DRIVER_SONAMES = {"libcuda.so.1", "libnvidia-ml.so.1"}
# Optional plugins: Qt skips a plugin whose libraries are missing, so theirs may be Recommends only.
# The GTK platform theme gives GNOME users native file dialogs; without GTK Qt's own dialogs appear.
OPTIONAL_PLUGINS = re.compile(r"plugins/platformthemes/libqgtk3\.so$")


def elf_files(bundle: Path) -> list[Path]:
    out = []
    for path in bundle.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as fh:
                if fh.read(4) == ELF_MAGIC:
                    out.append(path)
    return out


def needed(path: Path) -> set[str]:
    text = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=False).stdout
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", text))


def providing_package(soname: str) -> str | None:
    result = subprocess.run(["dpkg", "-S", f"*/{soname}"], capture_output=True, text=True, check=False)
    for line in result.stdout.splitlines():
        package = line.split(":", 1)[0].split(",")[0].strip()
        if package:
            return package
    return None


def field(control: Path, name: str) -> set[str]:
    """Package names in a control file field (Depends, Recommends), without versions."""
    text = control.read_text(encoding="utf-8") + "\nEnd: x\n"
    match = re.search(rf"^{name}:(.*?)(?=^\S)", text, re.M | re.S)
    if not match:
        return set()
    return {re.split(r"[\s(]", item.strip())[0] for item in match.group(1).split(",") if item.strip()}


def main(argv: list[str]) -> int:
    bundle, control = Path(argv[0]), Path(argv[1])
    files = elf_files(bundle)
    carried = {path.name for path in bundle.rglob("*.so*")}
    wanted: dict[str, set[str]] = {}
    for path in files:
        for soname in needed(path):
            if soname not in carried:
                wanted.setdefault(soname, set()).add(str(path.relative_to(bundle)))
    declared = field(control, "Depends")
    recommended = field(control, "Recommends")
    missing = []
    print(f"{len(files)} ELF files; {len(wanted)} system libraries needed:")
    for soname in sorted(wanted):
        if soname in DRIVER_SONAMES:
            print(f"  ok  {soname:<28} {'(NVIDIA driver)':<22} not declared")
            continue
        if LIBC_SONAMES.match(soname):
            package = "libc6"
        else:
            package = KNOWN_PACKAGES.get(soname) or providing_package(soname)
        optional = all(OPTIONAL_PLUGINS.search(user) for user in wanted[soname])
        ok = package in declared or (optional and package in recommended)
        how = "Recommends" if package not in declared and ok else "Depends"
        print(f"  {'ok ' if ok else 'MISSING'} {soname:<28} {package or '?':<22} {how if ok else ''}")
        if not ok:
            example = sorted(wanted[soname])[0]
            missing.append(f"{soname} (package {package or 'unknown'}; needed by {example})")
    if missing:
        print("Not covered by Depends:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
