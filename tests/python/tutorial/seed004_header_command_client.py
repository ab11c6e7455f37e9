# The remote command client from ../shared/seeds/004_d2deedeae7f7f226.txt
# (Day35, "使用struct解决黏包", the dictionary header version: a
# struct.pack('i') length, a JSON header with "data_size", then the output).
# Changed: the address ('127.0.0.1',8080) is (HOST, PORT), set by run.py;
# the line breaks and indentation, lost in the seed's text, are restored.
# Works with: remote_shell_server --tutorial=header, after the HMAC client
# (run.py --before seed003_hmac_client.py), for outputs of up to 1024
# bytes: beyond that its receiving loop adds up the lengths wrongly and
# stops early, and the rest of the output runs into the next reply.
from socket import *
import struct,json
ip_port=(HOST, PORT)
client=socket(AF_INET,SOCK_STREAM)
client.connect(ip_port)
while True:
    cmd=input('>>: ')
    if not cmd:continue
    client.send(bytes(cmd,encoding='utf-8'))
    head=client.recv(4)
    head_json_len=struct.unpack('i',head)[0]
    head_json=json.loads(client.recv(head_json_len).decode('utf-8'))
    data_len=head_json['data_size']
    recv_size=0
    recv_data=b''
    while recv_size < data_len:
        recv_data+=client.recv(1024)
        recv_size+=len(recv_data)
    print(recv_data.decode('gbk'))
    #print(recv_data.decode('gbk')) #windows默认gbk编码
