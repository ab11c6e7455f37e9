# The remote command client from ../shared/seeds/003_8ac162b8052a46be.txt
# (section 8, "解决黏包", the struct version: a struct.pack('i') length,
# then the output, read a byte at a time).
# Changed: the address ('127.0.0.1', 1031) is (HOST, PORT), set by run.py;
# the indentation, lost in the seed's HTML, is restored.
# Works with: remote_shell_server --tutorial, after the HMAC client
# (run.py --before seed003_hmac_client.py).
import struct, socket, subprocess
ip_port = (HOST, PORT)
encod = 'utf-8'
sk = socket.socket()
sk.connect_ex(ip_port)
try:
    while 1:
        cmd = input('>>>').strip()
        if len(cmd) ==0:continue
        sk.send(cmd.encode(encod))
        length_bytes = sk.recv(4) # 先确定长度
        length = struct.unpack('i', length_bytes) # 提取的长度是一个元组(4,)
        data = b''
        while len(data) < length[0]:data += sk.recv(1) # 再接收数据
        print(data.decode(encod))
finally: # 这句的意思是无论如何都要执行下面的语句,即使是程序崩溃
    sk.close()
