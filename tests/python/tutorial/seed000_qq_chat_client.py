# The "QQ chat room" client from ../shared/seeds/000_eba5b0b3040cedc0.txt
# (day27, "QQ聊天室": sends each line typed as a datagram, then prints the
# next datagram it gets, from anyone).
# Changed: the address ('127.0.0.1', 9527) is (HOST, PORT), set by run.py;
# the indentation, lost in the seed's text, is restored.
# Works with: chat_server --tutorial (it joins as guest-N, and the room
# relays each of its lines to every member, itself included).
import socket
client = socket.socket(type=socket.SOCK_DGRAM)
server_ip_port = (HOST, PORT)
while True:
    send_msg = input('客户端1: ').encode('utf-8')
    # 发送消息必须要加上对方地址
    client.sendto(send_msg, server_ip_port)
    # 能接收任何人的消息
    msg = client.recv(1024)
    print(msg.decode('utf-8'))
