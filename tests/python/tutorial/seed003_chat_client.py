# The chat client from ../shared/seeds/003_8ac162b8052a46be.txt (section 6,
# "聊天": pick an identity by number, type a message, print the answer).
# Changed: each address ('127.0.0.1', 4096) is (HOST, PORT), set by run.py;
# the indentation, lost in the seed's HTML, is restored.
# Works with: chat_server --tutorial (it joins as guest-N, and the room
# relays each of its messages to every member, itself included).
import socket
BUFSIZE = 4096
name_di = [('赵丽颖', (HOST, PORT)),
           ('杨幂', (HOST, PORT)),
           ('白百何', (HOST, PORT)),
           ('迪丽热巴', (HOST, PORT)),
           ]
udp_sk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    while 1:
        print("选择身份:")
        for s,i in enumerate(name_di, 1):
            print(s, i[0])
        try:
            sum = int(input("\n序号:").strip())
            if sum < 1:
                print("输入有误!\n")
                continue
            ip_port = name_di[sum-1][1]
        except Exception:
            print("输入有误!\n")
            continue
        msg = input("输入消息:").strip().encode('utf-8')
        udp_sk.sendto(msg, ip_port)
        bk_msg, addr = udp_sk.recvfrom(BUFSIZE)
        print("来自[%s:%s]的消息:\033[1;36m%s\033[0m"
              %(addr[0], addr[1], bk_msg.decode('utf-8')))
except Exception as e:
    print(e)
finally:
    udp_sk.close()
