# Sourced by the bench scripts: `need <command> <Debian package> <who>`
# installs the package when the command is missing (the project's scripts
# install what they use).
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "$3: installing $2 (Debian)"
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "$2" >/dev/null
}
