# Build and smoke-test the Windows installer (run by the "installers" workflow on windows-latest).
#
#   pwsh packaging/windows/build_windows.ps1 -Variant cpu|cuda
#
# The same steps as packaging/build_linux.sh: build venv with the variant's torch, traced imports, icons,
# PyInstaller, a smoke test of the bundle (full and first-run, offscreen, empty environment, from a copy
# outside the checkout), then Inno Setup. Not run on the Linux development machine; see docs/packaging.md.
param(
    [ValidateSet("cpu", "cuda")] [string] $Variant = "cpu",
    [string] $TorchVersion = "2.13.0",
    [string] $Python = "python"
)
$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest
# Native commands do not throw on a non-zero exit: check every one.
function Invoke-Checked([string] $What, [scriptblock] $Command) {
    & $Command
    if ($LASTEXITCODE -ne 0) { throw "$What failed with exit code $LASTEXITCODE" }
}

$Root = (Resolve-Path "$PSScriptRoot\..\..").Path
Set-Location $Root
$Build = "$Root\packaging\build"
$Venv = "$Build\venv-$Variant"
$Py = "$Venv\Scripts\python.exe"
New-Item -ItemType Directory -Force "$Build\artifacts" | Out-Null

Write-Host "== build venv ($Variant)"
if (-not (Test-Path $Py)) { Invoke-Checked "venv" { & $Python -m venv $Venv } }
Invoke-Checked "pip upgrade" { & $Py -m pip install --quiet --upgrade pip }
$Index = if ($Variant -eq "cuda") { "https://download.pytorch.org/whl/cu128" } else { "https://download.pytorch.org/whl/cpu" }
Invoke-Checked "torch" { & $Py -m pip install --quiet "torch==$TorchVersion" --index-url $Index }
Invoke-Checked "torch variant" { & $Py -c "import sys, torch; c = torch.version.cuda; sys.exit(0 if (c is not None) == ('$Variant' == 'cuda') else 1)" }
Invoke-Checked "app" { & $Py -m pip install --quiet ".[packaging]" pytest }
Invoke-Checked "app (this tree)" { & $Py -m pip install --quiet --no-deps --force-reinstall . }
$Version = (& $Py -c "import inpaint_studio; print(inpaint_studio.__version__)").Trim()

Write-Host "== traced imports, icons"
$env:OMP_NUM_THREADS = "1"
Invoke-Checked "trace" { & $Py packaging\trace_imports.py "$Build\traced_imports.txt" }
Invoke-Checked "icons" { & $Py packaging\make_icons.py }

Write-Host "== PyInstaller"
$env:INPAINT_STUDIO_REQUIRE_TRACE = "1"
Invoke-Checked "pyinstaller" { & "$Venv\Scripts\pyinstaller.exe" --noconfirm --log-level WARN --distpath "$Build\dist" --workpath "$Build\work" packaging\inpaint-studio.spec }
$Bundle = "$Build\dist\inpaint-studio"

Write-Host "== smoke tests (bundle copied outside the checkout, no venv on PATH)"
$Models = "$Build\smoke-models"
Invoke-Checked "tiny models" { & $Py -c "import sys; sys.path.insert(0, '.'); from pathlib import Path; from tests.tiny_models import BUILDERS; [BUILDERS[n](Path(sys.argv[1]) / n) for n in ('sd_inpaint', 'sdxl_inpaint')]" $Models }
$TempRoot = if ($env:RUNNER_TEMP) { $env:RUNNER_TEMP } else { $env:TEMP }
$Smoke = Join-Path $TempRoot "inpaint-smoke"
Remove-Item -Recurse -Force $Smoke -ErrorAction SilentlyContinue
Copy-Item -Recurse $Bundle "$Smoke\inpaint-studio"
$Cli = "$Smoke\inpaint-studio\inpaint-studio-cli.exe"
$Saved = @{ PATH = $env:PATH; USERPROFILE = $env:USERPROFILE; APPDATA = $env:APPDATA; LOCALAPPDATA = $env:LOCALAPPDATA }
$env:QT_QPA_PLATFORM = "offscreen"
$env:PATH = "C:\Windows\System32;C:\Windows"  # nothing of the build venv or Python on PATH
Push-Location $Smoke
try {
    $env:USERPROFILE = "$Smoke\home-full"; $env:APPDATA = "$Smoke\home-full\AppData"; $env:LOCALAPPDATA = "$Smoke\home-full\Local"
    Invoke-Checked "smoke (full)" { & $Cli --smoke-test "$Smoke\full" --model "$Models\sd_inpaint" --cli-model "$Models\sdxl_inpaint" }
    $env:USERPROFILE = "$Smoke\home-first"; $env:APPDATA = "$Smoke\home-first\AppData"; $env:LOCALAPPDATA = "$Smoke\home-first\Local"
    Invoke-Checked "smoke (first run)" { & $Cli --smoke-test "$Smoke\first-run" --first-run }
} finally {
    Pop-Location
    foreach ($name in $Saved.Keys) { Set-Item "env:$name" $Saved[$name] }  # choco and iscc need the real PATH
}
Copy-Item "$Smoke\full\smoke-report.json" "$Build\artifacts\smoke-report-windows-$Variant-full.json"
Copy-Item "$Smoke\first-run\smoke-report.json" "$Build\artifacts\smoke-report-windows-$Variant-first-run.json"

Write-Host "== Inno Setup"
$Iscc = "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe"
if (-not (Test-Path $Iscc)) { Invoke-Checked "install Inno Setup" { choco install innosetup --no-progress -y } }
Invoke-Checked "iscc" { & $Iscc "/DAppVersion=$Version" "/DVariant=$Variant" packaging\windows\inpaint-studio.iss }
Compress-Archive -Path $Bundle -DestinationPath "$Build\artifacts\inpaint-studio-$Version-windows-x64-$Variant.zip" -Force
$Size = (Get-ChildItem -Recurse -File $Bundle | Measure-Object -Sum Length).Sum / 1MB
Write-Host ("bundle: {0:N0} MB" -f $Size)
Get-ChildItem "$Build\artifacts" | Format-Table Name, Length
