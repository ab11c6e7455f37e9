# The TCP client of the socketserver section of
# ../shared/seeds/000_eba5b0b3040cedc0.txt (day27, "SocketServer": sends
# each line typed, prints the uppercase the server sends back).
# Changed: the address ('127.0.0.1', 8888) is (HOST, PORT), set by run.py;
# the indentation, lost in the seed's text, is restored.
# Works with: uppercase_tcp_server, as it is.
import socket
client = socket.socket()
client.connect(
    (HOST, PORT)
)
while True:
    send_msg = input('客户端: ')
    client.send(send_msg.encode('utf-8'))
    back_msg = client.recv(1024)
    print(back_msg.decode('utf-8'))
