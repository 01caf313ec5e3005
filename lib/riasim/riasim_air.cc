#include "riasim_air.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <signal.h>
#include <sstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace riasim {

namespace {
constexpr uint32_t air_magic = 0x41414952; // "RIAA"
constexpr uint32_t air_version = 1;
constexpr int slot_count = 8;
constexpr uint64_t segments_per_slot = 64;
constexpr uint64_t ring_samples = uint64_t(1) << 19; // 4 MiB a slot; a power of two
constexpr uint64_t ring_mask = ring_samples - 1;
// A claim whose owner process is alive is only taken over after this much silence.
constexpr int64_t slot_abandoned_ns = 60'000'000'000LL;
// A receiver without a file looks for one this often (a stat: costs nothing measurable).
constexpr int64_t attach_retry_ns = 10'000'000LL; // a stat() every 10 ms: a first transmitter is heard within 10 ms
constexpr double two_pi = 6.283185307179586476925286766559;

static_assert(std::atomic<uint64_t>::is_always_lock_free, "the air needs lock-free 64-bit atomics");

struct segment {
    uint64_t first_pos; // ring position (counted from the slot's first sample ever) of sample 0
    uint64_t count;     // samples so far
    int64_t start_ns;   // air time of sample 0
    double rate;
    double freq_hz;
    double level_db;
};

struct alignas(64) slot {
    std::atomic<uint64_t> owner;     // pid << 32 | claim number; 0: free
    std::atomic<int64_t> alive_ns;   // last activity of the owner
    std::atomic<int64_t> end_ns;     // air time just past the latest sample (quick test for readers)
    std::atomic<uint64_t> seq;       // seqlock over written, segment_total and segments: odd while they change
    std::atomic<uint64_t> reserved;  // ring positions below this may be being overwritten
    uint64_t written;                // ring positions below this hold samples
    uint64_t segment_total;          // segments ever begun; the newest is segments[(total - 1) % segments_per_slot]
    segment segments[segments_per_slot];
    std::complex<float> ring[ring_samples];
};

struct header {
    uint32_t magic;
    uint32_t version;
    uint32_t slots;
    uint32_t segments;
    uint64_t ring;
    uint64_t size;
    std::atomic<int64_t> end_ns; // max over the slots' end_ns
};

struct layout {
    header head;
    slot slots[slot_count];
};

void store_max(std::atomic<int64_t>& a, int64_t v)
{
    int64_t cur = a.load(std::memory_order_relaxed);
    while (cur < v && !a.compare_exchange_weak(cur, v, std::memory_order_release, std::memory_order_relaxed)) {
    }
}

bool owner_gone(uint64_t owner, int64_t alive_ns, int64_t now)
{
    const pid_t pid = pid_t(owner >> 32);
    if (kill(pid, 0) == -1 && errno == ESRCH)
        return true;
    return now - alive_ns > slot_abandoned_ns;
}

int64_t seg_end_ns(const segment& s) { return s.start_ns + int64_t(std::llround(1e9 * double(s.count) / s.rate)); }
} // namespace

int64_t air_now_ns()
{
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
}

std::string air_path(const std::string& device_arg)
{
    std::string p = device_arg;
    if (p.empty()) {
        const char* env = std::getenv("RIASIM_AIR");
        p = env ? env : "";
    }
    if (p.empty()) {
        struct stat st;
        const std::string dir = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
        p = dir + "/riasim-air-" + std::to_string(getuid());
    }
    return p == "off" ? "" : p;
}

struct air_map {
    layout* l = nullptr;
    std::string path;

    ~air_map()
    {
        if (l)
            munmap(l, sizeof(layout));
    }

    // nullptr (and why in problem) if the file is missing (create = false) or unusable.
    static std::shared_ptr<air_map> open(const std::string& path, bool create, std::string& problem)
    {
        if (path.empty()) {
            problem = "the air is off";
            return nullptr;
        }
        const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
        if (fd < 0) {
            problem = "cannot open " + path + ": " + std::strerror(errno);
            return nullptr;
        }
        struct stat st;
        bool ok = fstat(fd, &st) == 0;
        // Two creators may both see 0 and both set the same size; a file of another size is not ours.
        if (ok && st.st_size == 0)
            ok = ftruncate(fd, off_t(sizeof(layout))) == 0 && fstat(fd, &st) == 0;
        if (!ok || uint64_t(st.st_size) != sizeof(layout)) {
            problem = path + " is not a riasim air file of this version (size " + std::to_string(st.st_size) +
                      ", expected " + std::to_string(sizeof(layout)) + ")";
            ::close(fd);
            return nullptr;
        }
        void* p = mmap(nullptr, sizeof(layout), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ::close(fd);
        if (p == MAP_FAILED) {
            problem = "cannot map " + path + ": " + std::strerror(errno);
            return nullptr;
        }
        auto m = std::make_shared<air_map>();
        m->l = static_cast<layout*>(p);
        m->path = path;
        header& h = m->l->head;
        // A zero file is an empty air; every creator writes the same constants.
        if (h.magic == 0) {
            h.version = air_version;
            h.slots = slot_count;
            h.segments = segments_per_slot;
            h.ring = ring_samples;
            h.size = sizeof(layout);
            std::atomic_thread_fence(std::memory_order_release);
            h.magic = air_magic;
        }
        if (h.magic != air_magic || h.version != air_version || h.slots != slot_count ||
            h.segments != segments_per_slot || h.ring != ring_samples) {
            problem = path + " is not a riasim air file of this version";
            return nullptr;
        }
        return m;
    }
};

// ---------------------------------------------------------------- transmitter

air_transmitter::air_transmitter(std::string path) : d_path(std::move(path)) {}

air_transmitter::~air_transmitter() { release(); }

bool air_transmitter::claim()
{
    static std::atomic<uint32_t> claims{ 0 };
    const uint64_t token = (uint64_t(uint32_t(getpid())) << 32) | (++claims | 1u);
    const int64_t now = air_now_ns();
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < slot_count; i++) {
            slot& s = d_map->l->slots[i];
            uint64_t cur = s.owner.load(std::memory_order_acquire);
            const bool free = cur == 0;
            if (!free && (pass == 0 || !owner_gone(cur, s.alive_ns.load(std::memory_order_relaxed), now)))
                continue;
            if (!s.owner.compare_exchange_strong(cur, token, std::memory_order_acq_rel))
                continue;
            // A writer that died mid-update left the seqlock odd: make it even again.
            uint64_t q = s.seq.load(std::memory_order_relaxed);
            if (q & 1)
                s.seq.store(q + 1, std::memory_order_release);
            // Positions only grow, whoever owns the slot, so a reader never confuses two owners' samples.
            s.reserved.store(std::max(s.reserved.load(std::memory_order_relaxed), s.written),
                             std::memory_order_relaxed);
            s.alive_ns.store(now, std::memory_order_relaxed);
            d_slot = i;
            d_token = token;
            return true;
        }
    }
    d_problem = "every slot of the air file " + d_path + " is taken";
    return false;
}

bool air_transmitter::begin_segment(int64_t start_ns, const air_setting& setting)
{
    d_segment_open = false;
    if (!d_map) {
        d_problem.clear();
        d_map = air_map::open(d_path, true, d_problem);
        if (!d_map)
            return false;
    }
    if (d_slot < 0 || d_map->l->slots[d_slot].owner.load(std::memory_order_acquire) != d_token) {
        d_slot = -1;
        if (!claim())
            return false;
    }
    d_problem.clear();
    slot& s = d_map->l->slots[d_slot];
    s.seq.fetch_add(1, std::memory_order_acq_rel);
    std::atomic_thread_fence(std::memory_order_release);
    segment& g = s.segments[s.segment_total % segments_per_slot];
    g = segment{ s.written, 0, start_ns, setting.rate, setting.freq_hz, setting.level_db };
    s.segment_total++;
    s.seq.fetch_add(1, std::memory_order_release);
    s.alive_ns.store(air_now_ns(), std::memory_order_relaxed);
    d_segment_open = true;
    return true;
}

void air_transmitter::append(const std::complex<float>* x, size_t n)
{
    if (!d_segment_open || n == 0)
        return;
    slot& s = d_map->l->slots[d_slot];
    while (n > 0) {
        const uint64_t m = std::min<uint64_t>(n, ring_samples / 4);
        // Announce the positions about to be overwritten before touching them.
        s.reserved.store(s.written + m, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        const uint64_t at = s.written & ring_mask;
        const uint64_t first = std::min(m, ring_samples - at);
        std::memcpy(&s.ring[at], x, first * sizeof(*x));
        std::memcpy(&s.ring[0], x + first, (m - first) * sizeof(*x));

        s.seq.fetch_add(1, std::memory_order_acq_rel);
        std::atomic_thread_fence(std::memory_order_release);
        segment& g = s.segments[(s.segment_total - 1) % segments_per_slot];
        g.count += m;
        s.written += m;
        const int64_t end = seg_end_ns(g);
        s.seq.fetch_add(1, std::memory_order_release);
        store_max(s.end_ns, end);
        store_max(d_map->l->head.end_ns, end);
        x += m;
        n -= m;
    }
    s.alive_ns.store(air_now_ns(), std::memory_order_relaxed);
}

void air_transmitter::release()
{
    d_segment_open = false;
    if (d_map && d_slot >= 0) {
        uint64_t mine = d_token;
        d_map->l->slots[d_slot].owner.compare_exchange_strong(mine, 0, std::memory_order_acq_rel);
    }
    d_slot = -1;
}

// ---------------------------------------------------------------- receiver

air_receiver::air_receiver(std::string path, double path_loss_db)
    : d_path(std::move(path)), d_path_loss_db(path_loss_db)
{
}

air_receiver::~air_receiver() = default;

bool air_receiver::attached()
{
    if (d_map)
        return true;
    if (d_path.empty())
        return false;
    const int64_t now = air_now_ns();
    if (now < d_next_attach_ns)
        return false;
    d_next_attach_ns = now + attach_retry_ns;
    struct stat st;
    if (stat(d_path.c_str(), &st) != 0) // nobody has transmitted yet: no file, and a receiver makes none
        return false;
    std::string problem;
    d_map = air_map::open(d_path, false, problem);
    return bool(d_map);
}

void air_receiver::mix(std::complex<float>* out,
                       size_t n,
                       int64_t t0_ns,
                       double rate,
                       double center_hz,
                       double bandwidth_hz,
                       double gain_db)
{
    if (n == 0 || !attached())
        return;
    layout& l = *d_map->l;
    if (l.head.end_ns.load(std::memory_order_acquire) <= t0_ns) // the common case: nothing on the air now
        return;
    const int64_t t1_ns = t0_ns + int64_t(std::ceil(1e9 * double(n) / rate));
    const double half_band = (bandwidth_hz > 0 ? std::min(bandwidth_hz, rate) : rate) / 2;

    for (slot& s : l.slots) {
        if (s.end_ns.load(std::memory_order_acquire) <= t0_ns)
            continue;
        // Snapshot the segments under the seqlock; a writer stuck mid-update (dead) is skipped.
        segment segs[segments_per_slot];
        uint64_t total = 0;
        bool consistent = false;
        for (int attempt = 0; attempt < 4 && !consistent; attempt++) {
            const uint64_t q1 = s.seq.load(std::memory_order_acquire);
            if (q1 & 1)
                continue;
            total = s.segment_total;
            std::memcpy(segs, s.segments, sizeof(segs));
            std::atomic_thread_fence(std::memory_order_acquire);
            consistent = s.seq.load(std::memory_order_relaxed) == q1;
        }
        if (!consistent)
            continue;
        const uint64_t kept = std::min<uint64_t>(total, segments_per_slot);
        for (uint64_t j = 0; j < kept; j++) {
            const segment& g = segs[(total - 1 - j) % segments_per_slot];
            if (g.count == 0 || !(g.rate > 0) || g.start_ns >= t1_ns || seg_end_ns(g) <= t0_ns)
                continue;
            const double offset_hz = g.freq_hz - center_hz;
            if (std::abs(offset_hz) >= half_band)
                continue;
            // Sample k of ours sits at u = a + k * b samples into the segment.
            const double a = 1e-9 * double(t0_ns - g.start_ns) * g.rate;
            const double b = g.rate / rate;
            const size_t k_lo = a >= 0 ? 0 : size_t(std::ceil(-a / b));
            const size_t k_hi = std::min<size_t>(n, size_t(std::max(0.0, std::ceil((double(g.count) - a) / b))));
            if (k_lo >= k_hi)
                continue;
            const double amp = std::pow(10.0, (g.level_db - d_path_loss_db + gain_db) / 20.0);
            // Phase of the frequency offset from the segment's start: continuous from one read to the next.
            const double t_lo = 1e-9 * double(t0_ns - g.start_ns) + double(k_lo) / rate;
            const double cycles = offset_hz * t_lo;
            std::complex<double> ph = std::polar(amp, two_pi * (cycles - std::floor(cycles)));
            const std::complex<double> step = std::polar(1.0, two_pi * offset_hz / rate);

            d_scratch.resize(k_hi - k_lo);
            const uint64_t first_used = g.first_pos + uint64_t(std::max(0.0, std::floor(a + b * double(k_lo))));
            for (size_t k = k_lo; k < k_hi; k++) {
                const double u = std::max(0.0, a + b * double(k));
                const double fl = std::floor(u);
                const uint64_t i = uint64_t(std::max(0.0, fl));
                const float frac = float(u - fl);
                const std::complex<float> x0 = s.ring[(g.first_pos + i) & ring_mask];
                const std::complex<float> x1 =
                    i + 1 < g.count ? s.ring[(g.first_pos + i + 1) & ring_mask] : std::complex<float>(0, 0);
                const std::complex<float> x = x0 + (x1 - x0) * frac;
                d_scratch[k - k_lo] = x * std::complex<float>(float(ph.real()), float(ph.imag()));
                ph *= step;
            }
            std::atomic_thread_fence(std::memory_order_acquire);
            // Samples a writer was overwriting meanwhile: this contribution is not used.
            if (first_used + ring_samples < s.reserved.load(std::memory_order_relaxed))
                continue;
            for (size_t k = k_lo; k < k_hi; k++)
                out[k] += d_scratch[k - k_lo];
        }
    }
}

std::string air_slots_json(const std::string& path)
{
    std::string problem;
    auto m = air_map::open(path, false, problem);
    if (!m)
        return "[]";
    std::ostringstream js;
    js.precision(17);
    js << "[";
    bool first = true;
    for (int i = 0; i < slot_count; i++) {
        slot& s = m->l->slots[i];
        const uint64_t owner = s.owner.load(std::memory_order_acquire);
        if (owner == 0)
            continue;
        const bool gone = owner_gone(owner, s.alive_ns.load(), air_now_ns());
        js << (first ? "" : ",") << "{\"slot\":" << i << ",\"pid\":" << (owner >> 32)
           << ",\"alive\":" << (gone ? "false" : "true")
           << ",\"alive_ns\":" << s.alive_ns.load() << ",\"end_ns\":" << s.end_ns.load()
           << ",\"written\":" << s.written << "}";
        first = false;
    }
    js << "]";
    return js.str();
}

} // namespace riasim
