# A fixed-output "download": the builder writes the text whose hash the package pins.
{ system }:
{ url, sha256, text }:
derivation {
  name = baseNameOf url;
  inherit system url text;
  builder = "/bin/sh";
  args = [ "-c" "printf '%s\\n' \"$text\" > \"$out\"" ];
  outputHashMode = "flat";
  outputHashAlgo = "sha256";
  outputHash = sha256;
}
