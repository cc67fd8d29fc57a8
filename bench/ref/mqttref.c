/*
 * mqttref — the reference client for bench/run, written against libmosquitto
 * (Debian libmosquitto-dev). It does what the Lua scripts under bench/lua do,
 * with the same message counts, payloads and protocol options, so that the two
 * can be compared in one run.
 *
 *   mqttref rtt     HOST PORT TOPIC N QOS SIZE
 *       ping-pong on its own subscription; prints "SAMPLES us us ..." (one RTT
 *       per message, in microseconds).
 *   mqttref pub     HOST PORT TOPIC N QOS SIZE WINDOW burst|paced
 *       publishes N messages: all at once (burst) or the next one from the
 *       on_publish callback (paced); exits when all are acknowledged.
 *   mqttref clients HOST PORT COUNT
 *       connects COUNT clients, prints "READY" when all have their CONNACK,
 *       then idles until stdin reaches EOF.
 *   mqttref timer   INTERVAL_MS COUNT
 *       a periodic timer (absolute deadlines, clock_nanosleep); prints
 *       "SAMPLES us us ..." — the fire times relative to the first fire.
 *
 * Every mode enables TCP_NODELAY (the best the reference can do).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <mosquitto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *what, int rc) {
    fprintf(stderr, "mqttref: %s: %s\n", what, mosquitto_strerror(rc));
    exit(2);
}

static struct mosquitto *new_client(const char *id, void *userdata) {
    struct mosquitto *m = mosquitto_new(id, true, userdata);
    if (!m) { perror("mosquitto_new"); exit(2); }
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    return m;
}

/* ---- shared state of the single-client modes ---- */
static const char *g_topic;
static long g_n, g_sent, g_done;
static int g_qos, g_paced;
static char *g_payload;
static int g_size;
static double *g_samples;
static double g_t0;

static void print_samples(long n) {
    fputs("SAMPLES", stdout);
    for (long i = 0; i < n; i++) printf(" %.1f", g_samples[i]);
    fputc('\n', stdout);
    fflush(stdout);
}

static void publish_one(struct mosquitto *m) {
    int rc = mosquitto_publish(m, NULL, g_topic, g_size, g_payload, g_qos, false);
    if (rc != MOSQ_ERR_SUCCESS) die("publish", rc);
    g_sent++;
}

/* rtt */
static void rtt_on_connect(struct mosquitto *m, void *u, int rc) {
    (void)u;
    if (rc) { fprintf(stderr, "connack %d\n", rc); exit(2); }
    mosquitto_subscribe(m, NULL, g_topic, g_qos);
}
static void rtt_on_subscribe(struct mosquitto *m, void *u, int mid, int n, const int *q) {
    (void)u; (void)mid; (void)n; (void)q;
    g_t0 = now_us();
    publish_one(m);
}
static void rtt_on_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg) {
    (void)u; (void)msg;
    double t = now_us();
    g_samples[g_done++] = t - g_t0;
    if (g_done >= g_n) { mosquitto_disconnect(m); return; }
    g_t0 = now_us();
    publish_one(m);
}

/* pub */
static void pub_on_connect(struct mosquitto *m, void *u, int rc) {
    (void)u;
    if (rc) { fprintf(stderr, "connack %d\n", rc); exit(2); }
    if (g_paced) publish_one(m);
    else while (g_sent < g_n) publish_one(m);
}
static void pub_on_publish(struct mosquitto *m, void *u, int mid) {
    (void)u; (void)mid;
    g_done++;
    if (g_done >= g_n) { mosquitto_disconnect(m); return; }
    if (g_paced && g_sent < g_n) publish_one(m);
}

/* clients */
static long g_connected;
static void cl_on_connect(struct mosquitto *m, void *u, int rc) {
    (void)m; (void)u;
    if (rc) { fprintf(stderr, "connack %d\n", rc); exit(2); }
    g_connected++;
}

static void make_payload(int size) {
    g_size = size;
    g_payload = malloc(size + 1);
    memset(g_payload, 'x', size);
    g_payload[size] = 0;
}

static int run_single(struct mosquitto *m, const char *host, int port) {
    int rc = mosquitto_connect(m, host, port, 60);
    if (rc) die("connect", rc);
    rc = mosquitto_loop_forever(m, -1, 1);
    if (rc && rc != MOSQ_ERR_NO_CONN) die("loop", rc);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) goto usage;
    mosquitto_lib_init();
    const char *mode = argv[1];
    if (!strcmp(mode, "rtt") && argc == 8) {
        g_topic = argv[4]; g_n = atol(argv[5]); g_qos = atoi(argv[6]);
        make_payload(atoi(argv[7]));
        g_samples = calloc(g_n, sizeof(double));
        struct mosquitto *m = new_client(NULL, NULL);
        mosquitto_connect_callback_set(m, rtt_on_connect);
        mosquitto_subscribe_callback_set(m, rtt_on_subscribe);
        mosquitto_message_callback_set(m, rtt_on_message);
        run_single(m, argv[2], atoi(argv[3]));
        print_samples(g_done);
        return g_done == g_n ? 0 : 1;
    }
    if (!strcmp(mode, "pub") && argc == 10) {
        g_topic = argv[4]; g_n = atol(argv[5]); g_qos = atoi(argv[6]);
        make_payload(atoi(argv[7]));
        int window = atoi(argv[8]);
        g_paced = !strcmp(argv[9], "paced");
        struct mosquitto *m = new_client(NULL, NULL);
        mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, window);
        mosquitto_max_inflight_messages_set(m, window);
        mosquitto_connect_callback_set(m, pub_on_connect);
        mosquitto_publish_callback_set(m, pub_on_publish);
        run_single(m, argv[2], atoi(argv[3]));
        printf("DONE %ld\n", g_done);
        return g_done == g_n ? 0 : 1;
    }
    if (!strcmp(mode, "clients") && argc == 5) {
        const char *host = argv[2];
        int port = atoi(argv[3]);
        long count = atol(argv[4]);
        struct mosquitto **ms = calloc(count, sizeof(*ms));
        for (long i = 0; i < count; i++) {
            ms[i] = new_client(NULL, NULL);
            mosquitto_connect_callback_set(ms[i], cl_on_connect);
            int rc = mosquitto_connect(ms[i], host, port, 60);
            if (rc) die("connect", rc);
        }
        /* mosquitto_loop() uses select(), which cannot watch fds >= FD_SETSIZE: poll
         * the sockets ourselves and let libmosquitto read/write. */
        struct pollfd *pfd = calloc(count, sizeof(*pfd));
        double deadline = now_us() + 60e6;
        while (g_connected < count) {
            for (long i = 0; i < count; i++) {
                pfd[i].fd = mosquitto_socket(ms[i]);
                pfd[i].events = POLLIN | (mosquitto_want_write(ms[i]) ? POLLOUT : 0);
                pfd[i].revents = 0;
            }
            if (poll(pfd, count, 100) < 0 && errno != EINTR) { perror("poll"); return 1; }
            for (long i = 0; i < count; i++) {
                if (pfd[i].revents & POLLOUT) mosquitto_loop_write(ms[i], 1);
                if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                    int rc = mosquitto_loop_read(ms[i], 1);
                    if (rc) die("read", rc);
                }
            }
            if (now_us() > deadline) { fprintf(stderr, "timeout\n"); return 1; }
        }
        printf("READY %ld\n", g_connected);
        fflush(stdout);
        for (;;) {
            struct pollfd p = { .fd = 0, .events = POLLIN };
            int r = poll(&p, 1, 200);
            if (r > 0) {
                char buf[256];
                ssize_t k = read(0, buf, sizeof buf);
                if (k <= 0) break;
            }
            for (long i = 0; i < count; i++) mosquitto_loop_misc(ms[i]);
        }
        return 0;
    }
    if (!strcmp(mode, "timer") && argc == 4) {
        long interval_ns = atol(argv[2]) * 1000000L;
        long count = atol(argv[3]);
        g_samples = calloc(count, sizeof(double));
        struct timespec next;
        clock_gettime(CLOCK_MONOTONIC, &next);
        double first = 0;
        for (long i = 0; i < count; i++) {
            next.tv_nsec += interval_ns;
            while (next.tv_nsec >= 1000000000L) { next.tv_nsec -= 1000000000L; next.tv_sec++; }
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {}
            double t = now_us();
            if (i == 0) first = t;
            g_samples[i] = t - first;
        }
        print_samples(count);
        return 0;
    }
usage:
    fprintf(stderr,
            "usage: mqttref rtt HOST PORT TOPIC N QOS SIZE\n"
            "       mqttref pub HOST PORT TOPIC N QOS SIZE WINDOW burst|paced\n"
            "       mqttref clients HOST PORT COUNT\n"
            "       mqttref timer INTERVAL_MS COUNT\n");
    return 64;
}
