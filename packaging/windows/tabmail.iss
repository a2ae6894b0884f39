; Inno Setup 6 script: a per-user (no admin) or all-users installer for the one-folder build.
;
;   pyinstaller --noconfirm --clean --distpath dist --workpath build packaging\tabmail.spec
;   "%ProgramFiles(x86)%\Inno Setup 6\ISCC.exe" packaging\windows\tabmail.iss
;
; gives dist\tabmail-<version>-setup.exe. The version is read from dist\tabmail\tabmail.exe's
; version resource (which packaging/tabmail.spec fills from tabmail/__init__.py); pass
; /DAppVersion=x.y.z to override it. Sign the installer after building (packaging/README.md).

#define AppName "tabmail"
#define AppExe "tabmail.exe"
#define Here AddBackslash(SourcePath)
#define DistDir Here + "..\..\dist\tabmail"
#ifndef AppVersion
  #define AppVersion GetStringFileInfo(DistDir + "\" + AppExe, "ProductVersion")
#endif
#if AppVersion == ""
  #error "dist\tabmail\tabmail.exe is missing or has no version: build it with PyInstaller first"
#endif

[Setup]
; Never change AppId: upgrades and uninstall find the installed copy through it.
AppId={{6B0C5E1A-3F7D-4C2B-9A55-7E1D2B8F4A10}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=tabmail developers
AppPublisherURL=https://github.com/tabmail/tabmail
AppSupportURL=https://github.com/tabmail/tabmail/issues
AppCopyright=Copyright (C) tabmail developers
VersionInfoVersion={#AppVersion}
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; Install for the current user without asking for admin rights; the dialog offers all users.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir={#Here}..\..\dist
OutputBaseFilename=tabmail-{#AppVersion}-setup
SetupIconFile={#Here}tabmail.ico
UninstallDisplayIcon={app}\{#AppExe}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesEnvironment=yes
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Add tabmail-cli to the PATH (for the command line)"; Flags: unchecked

[Files]
; The whole one-folder bundle: tabmail.exe (window), tabmail-cli.exe (terminal), _internal\.
Source: "{#DistDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

; The database and logs (%LOCALAPPDATA%\tabmail) are the director's records: never removed.

[InstallDelete]
; A previous version's libraries must not linger next to the new ones.
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; AppUserModelID: "org.tabmail.Tabmail"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon; AppUserModelID: "org.tabmail.Tabmail"

[Registry]
; Per-user PATH entry (HKCU works without admin rights), removed again on uninstall.
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NeedsAddPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[Code]
function NeedsAddPath(Dir: string): Boolean;
var
  Path: string;
begin
  if not RegQueryStringValue(HKCU, 'Environment', 'Path', Path) then
    Path := '';
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Path) + ';') = 0;
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  Path, Dir: string;
  P: Integer;
begin
  if CurUninstallStep <> usPostUninstall then
    exit;
  if not RegQueryStringValue(HKCU, 'Environment', 'Path', Path) then
    exit;
  Dir := ';' + ExpandConstant('{app}');
  P := Pos(Uppercase(Dir), Uppercase(Path));
  if P > 0 then
  begin
    Delete(Path, P, Length(Dir));
    RegWriteExpandStringValue(HKCU, 'Environment', 'Path', Path);
  end;
end;
