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


def depends(control: Path) -> set[str]:
    text = control.read_text(encoding="utf-8")
    match = re.search(r"^Depends:(.*?)(?=^\S)", text, re.M | re.S)
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
    declared = depends(control)
    missing = []
    print(f"{len(files)} ELF files; {len(wanted)} system libraries needed:")
    for soname in sorted(wanted):
        package = "libc6" if LIBC_SONAMES.match(soname) else providing_package(soname)
        ok = package in declared
        print(f"  {'ok ' if ok else 'MISSING'} {soname:<32} {package or '?'}")
        if not ok:
            example = sorted(wanted[soname])[0]
            missing.append(f"{soname} (package {package or 'unknown'}; needed by {example})")
    if missing:
        print("Not covered by Depends:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
