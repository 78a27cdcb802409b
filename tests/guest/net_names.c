/* Name and interface lookups: getaddrinfo("localhost") with and without AI_ADDRCONFIG
 * (glibc asks NETLINK_ROUTE for the addresses), getifaddrs (RTM_GETLINK/RTM_GETADDR dumps),
 * if_nametoindex("lo"), gethostname. Prints only what is the same on any host: the
 * loopback entries. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void lookup(const char *host, int flags) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = flags}, *res;
    int r = getaddrinfo(host, "6379", &hints, &res);
    printf("getaddrinfo(%s, flags %#x): %s\n", host, flags, r ? gai_strerror(r) : "ok");
    if (r) return;
    int v4 = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char text[64] = "";
        if (ai->ai_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, text, sizeof text);
            printf("  AF_INET %s port %d\n", text, ntohs(((struct sockaddr_in *)ai->ai_addr)->sin_port));
            v4++;
        }
    }
    printf("  v4 entries %d\n", v4);
    freeaddrinfo(res);
}

int main(void) {
    lookup("localhost", 0);
    lookup("localhost", AI_ADDRCONFIG);
    lookup("127.0.0.1", AI_NUMERICHOST);
    struct ifaddrs *ifa;
    if (getifaddrs(&ifa)) { perror("getifaddrs"); return 1; }
    int lo_v4 = 0, lo_link = 0;
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
        if (strcmp(i->ifa_name, "lo")) continue;
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET) {
            char a[32], m[32];
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof a);
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_netmask)->sin_addr, m, sizeof m);
            printf("lo inet %s netmask %s up %d loopback %d\n", a, m, !!(i->ifa_flags & IFF_UP),
                   !!(i->ifa_flags & IFF_LOOPBACK));
            lo_v4++;
        }
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_PACKET) lo_link++;
    }
    printf("lo: %d inet, %d link entries\n", lo_v4, lo_link);
    freeifaddrs(ifa);
    printf("if_nametoindex(lo) = %u\n", if_nametoindex("lo"));
    return 0;
}
