# The file download client from ../shared/seeds/004_d2deedeae7f7f226.txt
# (Day35, "简单的文件传送": the server pushes a struct.pack('i') length, a
# JSON header with filename and filesize, then the file; the client saves
# it in the current directory under the header's name).
# Changed: the address ('127.0.0.1',9000) is (HOST, PORT), set by run.py;
# the line breaks and indentation, lost in the seed's text, are restored.
# Works with: file_server --tutorial --push NAME, for files that arrive in
# one recv (it reads the file with a single sk.recv(filesize)).
import json
import struct
import socket
sk = socket.socket()
sk.connect((HOST, PORT))
dic_len = sk.recv(4)
dic_len = struct.unpack('i',dic_len)[0]
str_dic = sk.recv(dic_len).decode('utf-8')
dic = json.loads(str_dic)
with open(dic['filename'],'wb') as f:
    content = sk.recv(dic['filesize'])
    f.write(content)
sk.close()
