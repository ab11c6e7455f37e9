# The UDP client template ("UDP模板") from ../shared/seeds/002_859ea6253881030b.txt
# (sends each line typed as a datagram, prints the answer).
# Changed: the address ("127.0.0.1",8888) is (HOST, PORT), set by run.py;
# the line numbers of the seed's listing are left out.
# Works with: uppercase_udp_server, as it is.
import socket

client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM) # datagram数据报的意思

while True:
    msg = input(">>>:")#UDP协议可以发空
    client.sendto(msg.encode("utf-8"),(HOST, PORT))
    data,addr = client.recvfrom(1024)
    print(data.decode("utf-8"))
