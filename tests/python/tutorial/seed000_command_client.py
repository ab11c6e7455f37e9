# The remote command client from ../shared/seeds/000_eba5b0b3040cedc0.txt
# (day27, "粘包问题": the struct.pack('i') length, then the output).
# Changed: the address ('127.0.0.1', 9527) is (HOST, PORT), set by run.py;
# the indentation, lost in the seed's text, is restored.
# Works with: remote_shell_server --tutorial, after the HMAC client
# (run.py --before seed003_hmac_client.py).
import socket
import struct
client = socket.socket()
client.connect(
    (HOST, PORT)
)
while True:
    cmd = input('》》》:') # dir
    client.send(cmd.encode('utf-8'))
    if cmd == 'q':
        break
    # 先获取数据报头
    headers = client.recv(4)
    # 解包,或者真实数据长度
    data_len = struct.unpack('i', headers)[0] # (len, )
    # 接收真实数据长度
    data = client.recv(data_len)
    print(data.decode('gbk'))
client.close()
