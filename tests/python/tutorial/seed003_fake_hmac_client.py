# The fake HMAC client ("假的客户端") from ../shared/seeds/003_8ac162b8052a46be.txt
# (section 6, "验证客户端合法性": the same exchange with the wrong salt).
# Changed: the address ('127.0.0.1', 1024) is (HOST, PORT), set by run.py;
# the indentation is restored; and hmac.new is given the digest 'sha256'
# (see seed003_hmac_client.py).
# Refused by: remote_shell_server --tutorial --key "hi, I'm salt.".
from socket import *
import hmac, os
length_bytes, encod, ip_port = 32, 'utf-8', (HOST, PORT)
pseudo_salt = "大家好,我是假盐".encode('utf-8')
sk = socket()
sk.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
sk.connect_ex(ip_port)
random_bytes = sk.recv(32)
client_results = hmac.new(pseudo_salt, random_bytes, 'sha256').digest()
sk.sendall(client_results)
