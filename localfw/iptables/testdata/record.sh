#!/bin/bash
# Records real iptables-save output into this directory. Run as root from
# this directory; every recording is made in a network namespace of its own,
# so the host's firewall is never touched.
set -eu
ns=mfw-record
record() { # record NAME MODE SCRIPT
	local name=$1 mode=$2 script=$3
	ip netns add $ns
	trap 'ip netns del $ns' EXIT
	ip netns exec $ns bash -eu -c "$script"
	case $name in
	*-v6) ip netns exec $ns ip6tables-$mode-save -t filter >"$name.txt" ;;
	*-all) ip netns exec $ns iptables-$mode-save >"$name.txt" ;;
	*) ip netns exec $ns iptables-$mode-save -t filter >"$name.txt" ;;
	esac
	ip netns del $ns
	trap - EXIT
}

record empty-nft-v4 nft 'true'

record mixed-nft-v4 nft '
t=iptables-nft
$t -N f2b-postfix
$t -A f2b-postfix -s 198.51.100.66/32 -j REJECT --reject-with icmp-port-unreachable
$t -A f2b-postfix -j RETURN
$t -A INPUT -p tcp -m multiport --dports 25,465,587 -j f2b-postfix
$t -A INPUT -i lo -j ACCEPT
$t -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
$t -A INPUT -p tcp --dport 22 -j ACCEPT
$t -A INPUT -p tcp -s 203.0.113.0/24 --dport 587 -m comment --comment "office \"quoted\" é" -j ACCEPT
$t -A INPUT -p tcp -m multiport --dports 25,465 -s 192.0.2.7 -j ACCEPT
$t -A INPUT -p tcp --dport 1000:2000 -j ACCEPT
$t -A INPUT -p udp --dport 53 -j ACCEPT
$t -A INPUT -p icmp -j ACCEPT
$t -A INPUT -s 10.0.0.0/8 -j ACCEPT
$t -A INPUT -p tcp --dport 25 -m connlimit --connlimit-above 10 --connlimit-mask 32 -j REJECT --reject-with tcp-reset
$t -A INPUT -p tcp --dport 25 -m limit --limit 5/min -j ACCEPT
$t -A INPUT -p tcp ! -s 192.0.2.0/24 --dport 26 -j ACCEPT
$t -A INPUT -p tcp --dport 25 -m recent --name x --set
$t -A INPUT -p tcp --dport 25 -j LOG --log-prefix "mail: "
$t -N MAILFW-INPUT
$t -A MAILFW-INPUT -s 192.0.2.99 -p tcp --dport 25 -m comment --comment "mailfw: blocked \$(x) \`y\` '"'"'z'"'"' 中" -j REJECT --reject-with tcp-reset
$t -A MAILFW-INPUT -s 203.0.113.0/24 -p tcp --dport 465 -m connlimit --connlimit-above 10 --connlimit-mask 32 -m comment --comment "mailfw: office" -j REJECT --reject-with tcp-reset
$t -A MAILFW-INPUT -p tcp --dport 25 -m comment --comment mailfw -j ACCEPT
$t -A MAILFW-INPUT -s 203.0.113.0/24 -p tcp --dport 465 -m comment --comment "mailfw: office" -j ACCEPT
$t -A MAILFW-INPUT -s 198.51.100.0/24 -p tcp --dport 587 -m comment --comment "someone else" -j ACCEPT
$t -A INPUT -m comment --comment mailfw -j MAILFW-INPUT
$t -A INPUT -j REJECT --reject-with icmp-host-prohibited
$t -P INPUT DROP
'

record mixed-nft-v6 nft '
t=ip6tables-nft
$t -N f2b-postfix
$t -A f2b-postfix -s 2001:db8:bad::1 -j REJECT --reject-with icmp6-port-unreachable
$t -A f2b-postfix -j RETURN
$t -A INPUT -p tcp -m multiport --dports 25,465,587 -j f2b-postfix
$t -A INPUT -i lo -j ACCEPT
$t -A INPUT -p ipv6-icmp -j ACCEPT
$t -A INPUT -p tcp --dport 22 -j ACCEPT
$t -A INPUT -s 2001:DB8:10:0::/48 -p tcp --dport 587 -j ACCEPT
$t -N MAILFW-INPUT
$t -A MAILFW-INPUT -s 2001:db8:10::/48 -p tcp --dport 465 -m connlimit --connlimit-above 5 --connlimit-mask 128 -m comment --comment "mailfw: office" -j REJECT --reject-with tcp-reset
$t -A MAILFW-INPUT -p tcp --dport 25 -m comment --comment mailfw -j ACCEPT
$t -A MAILFW-INPUT -s 2001:db8:10::/48 -p tcp --dport 465 -m comment --comment "mailfw: office" -j ACCEPT
$t -A INPUT -m comment --comment mailfw -j MAILFW-INPUT
$t -A INPUT -j REJECT --reject-with icmp6-adm-prohibited
'

record f2b-legacy-v4 legacy '
t=iptables-legacy
$t -N f2b-postfix
$t -A f2b-postfix -s 198.51.100.66/32 -j REJECT --reject-with icmp-port-unreachable
$t -A f2b-postfix -s 198.51.100.67/32 -j DROP
$t -A f2b-postfix -j RETURN
$t -N f2b-sshd
$t -A f2b-sshd -s 198.51.100.68/32 -j REJECT
$t -A f2b-sshd -j RETURN
$t -A INPUT -p tcp -m multiport --dports 25,465,587 -j f2b-postfix
$t -A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd
$t -A INPUT -p tcp --dport 22 -j ACCEPT
$t -A INPUT -p tcp -m multiport --dports 25,587 -j REJECT --reject-with tcp-reset
$t -N MAILFW-INPUT
$t -A INPUT -m comment --comment mailfw -j MAILFW-INPUT
$t -A MAILFW-INPUT -p tcp --dport 25 -m comment --comment mailfw -j ACCEPT
$t -P INPUT DROP
'

record docker-nft-all nft '
t=iptables-nft
$t -t nat -N DOCKER
$t -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
$t -t nat -A DOCKER -p tcp --dport 25 -j DNAT --to-destination 172.17.0.2:25
$t -A INPUT -p tcp --dport 22 -j ACCEPT
'

record states-nft-v4 nft '
t=iptables-nft
$t -A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
$t -A INPUT -m conntrack --ctstate INVALID -j DROP
$t -A INPUT -i lo -j ACCEPT
$t -A INPUT -p tcp -m state --state NEW -m tcp --dport 25 -j ACCEPT
$t -A INPUT -p tcp -m conntrack --ctstate NEW,ESTABLISHED --dport 587 -j ACCEPT
$t -A INPUT -p tcp --dport 465 -m conntrack --ctstate ESTABLISHED -j ACCEPT
$t -A INPUT -p tcp ! --syn -m state --state NEW -j DROP
$t -A INPUT -m iprange --src-range 198.51.100.1-198.51.100.9 -p tcp --dport 25 -j ACCEPT
$t -A INPUT -p tcp --dport 25 -m recent --name bad --rcheck --seconds 60 -j DROP
$t -N SMTP-IN
$t -A SMTP-IN -s 192.0.2.66 -j DROP
$t -A SMTP-IN -s 10.0.0.0/8 -j ACCEPT
$t -A SMTP-IN -j REJECT
$t -A INPUT -p tcp -m multiport --dports 25,465,587 -j SMTP-IN
$t -N MAILFW-INPUT
$t -A MAILFW-INPUT -p tcp --dport 25 -m comment --comment mailfw -j LOG
$t -A MAILFW-INPUT -p tcp --dport 25 -m comment --comment mailfw -j ACCEPT
$t -A INPUT -s 192.0.2.1 -m comment --comment mailfw -j MAILFW-INPUT
$t -A INPUT -i eth0 -j REJECT
$t -A FORWARD -j MAILFW-INPUT
'

record states-nft-v6 nft '
t=ip6tables-nft
$t -A INPUT -s ::ffff:192.0.2.1/128 -p tcp --dport 25 -j ACCEPT
$t -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
$t -A INPUT -p tcp --syn -j DROP
'
