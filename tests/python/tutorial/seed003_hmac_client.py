# The HMAC client from ../shared/seeds/003_8ac162b8052a46be.txt
# (section 6, "验证客户端合法性": 32 random bytes in, their HMAC out).
# Changed: the address ('127.0.0.1', 1024) is (HOST, PORT), set by run.py;
# the indentation is restored; and hmac.new is given the digest 'sha256':
# since Python 3.8 hmac.new has no default digest (it was MD5) and raises
# TypeError without one, and the server checks HMAC-SHA256.
# Works with: remote_shell_server --tutorial --key "hi, I'm salt.", as the
# first program of run.py --before.
from socket import *
import hmac, os
length_bytes, encod, ip_port = 32, 'utf-8', (HOST, PORT)
salt = b"hi, I'm salt."
sk = socket()
sk.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
sk.connect_ex(ip_port)
randoim_bytes = sk.recv(length_bytes) # 接收随机bytes
client_results = hmac.new(salt, randoim_bytes, 'sha256').digest() # 计算结果
sk.sendall(client_results) # 上传结果
