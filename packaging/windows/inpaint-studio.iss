; Inno Setup 6 script for Inpaint Studio (Windows x64). Not built on the Linux development machine: the
; "installers" GitHub Actions workflow builds it on a Windows runner (packaging/windows/build_windows.ps1):
;
;   iscc /DAppVersion=0.1.0 /DVariant=cpu packaging\windows\inpaint-studio.iss
;
; Input: the PyInstaller folder packaging\build\dist\inpaint-studio (inpaint-studio.exe, the windowed app, and
; inpaint-studio-cli.exe for the headless commands). Output: packaging\build\artifacts\
; inpaint-studio-VERSION-windows-x64-VARIANT-setup.exe. Installs per user by default (no administrator
; prompt; the dialog offers all users), adds a Start menu entry, registers *.inpaint projects and adds the
; app to "Open with" for PNG, JPEG, WebP, TIFF and BMP without taking those types over.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef Variant
  #define Variant "cpu"
#endif
#define AppName "Inpaint Studio"
#define AppExe "inpaint-studio.exe"
#define BundleDir "..\build\dist\inpaint-studio"

[Setup]
; The AppId identifies the app for upgrades and uninstall: never change it.
AppId={{5B0E8C52-3F4A-4D8E-9C1B-7A2F6E4D9B31}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion} ({#Variant})
AppPublisher=Inpaint Studio
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir=..\build\artifacts
OutputBaseFilename=inpaint-studio-{#AppVersion}-windows-x64-{#Variant}-setup
SetupIconFile=..\build\icons\inpaint-studio.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName}
WizardStyle=modern
Compression=lzma2/max
SolidCompression=yes
LZMAUseSeparateProcess=yes
ChangesAssociations=yes
#if Variant == "cuda"
; The CUDA build is larger than one setup file may be (2 GB): setup.exe plus setup-N.bin slices.
DiskSpanning=yes
DiskSliceSize=max
#endif

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Registry]
; Projects (*.inpaint) belong to the app.
Root: HKA; Subkey: "Software\Classes\.inpaint"; ValueType: string; ValueName: ""; ValueData: "InpaintStudio.Project"; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.inpaint"; ValueType: string; ValueName: "Content Type"; ValueData: "application/x-inpaint-studio"; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\InpaintStudio.Project"; ValueType: string; ValueName: ""; ValueData: "Inpaint Studio project"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\InpaintStudio.Project\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe},0"
Root: HKA; Subkey: "Software\Classes\InpaintStudio.Project\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""
; Images: offered in "Open with", the user's default viewer stays the default.
Root: HKA; Subkey: "Software\Classes\InpaintStudio.Image"; ValueType: string; ValueName: ""; ValueData: "Image (Inpaint Studio)"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\InpaintStudio.Image\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe},0"
Root: HKA; Subkey: "Software\Classes\InpaintStudio.Image\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""
Root: HKA; Subkey: "Software\Classes\.png\OpenWithProgids"; ValueType: string; ValueName: "InpaintStudio.Image"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.jpg\OpenWithProgids"; ValueType: string; ValueName: "InpaintStudio.Image"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.jpeg\OpenWithProgids"; ValueType: string; ValueName: "InpaintStudio.Image"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.webp\OpenWithProgids"; ValueType: string; ValueName: "InpaintStudio.Image"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.tif\OpenWithProgids"; ValueType: string; ValueName: "InpaintStudio.Image"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.tiff\OpenWithProgids"; ValueType: string; ValueName: "InpaintStudio.Image"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.bmp\OpenWithProgids"; ValueType: string; ValueName: "InpaintStudio.Image"; ValueData: ""; Flags: uninsdeletevalue
; "Open with" > "Choose another app" lists the app with its name and supported types.
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}"; ValueType: string; ValueName: "FriendlyAppName"; ValueData: "{#AppName}"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".png"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".jpg"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".jpeg"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".webp"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".tif"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".tiff"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".bmp"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\SupportedTypes"; ValueType: string; ValueName: ".inpaint"; ValueData: ""

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
