# Shared by the bench/ scripts (sourced, not run): logging, and the checks
# before a run — fio and python3 present, and a data directory on a real disk.

log() { printf '\n== %s\n' "$*" >&2; }

# Installs fio if missing, checks python3, and creates "$1", refusing tmpfs;
# sets FSTYPE (the reports name it).
prepare_bench() {
    if ! command -v fio >/dev/null 2>&1; then
        log "installing fio"
        apt-get update -qq && apt-get install -y -qq fio >/dev/null
    fi
    command -v python3 >/dev/null || { echo "python3 is needed for the report" >&2; exit 1; }
    mkdir -p "$1"
    FSTYPE=$(df --output=fstype "$1" | tail -1 | tr -d ' ')
    if [ "$FSTYPE" = tmpfs ]; then
        echo "$1 is on tmpfs; point --data at the disk to measure" >&2
        exit 1
    fi
}
