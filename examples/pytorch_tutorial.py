"""PyTorch's beginner tutorial "Training a classifier", run by minigrad.

The network, the loss, the optimizer, the training loop, saving and loading, the evaluation and
the device lines are the tutorial's, unchanged
(https://pytorch.org/tutorials/beginner/blitz/cifar10_tutorial.html). Two things differ: the
imports name minigrad, and the images are scikit-learn's real handwritten digits, scaled from
8x8 to the tutorial's 3x32x32 and normalised the way the tutorial normalises CIFAR-10, held in a
TensorDataset instead of torchvision's CIFAR10 (nothing downloads). Prints the tutorial's
running loss, the test accuracy and the accuracy per class; takes about a minute on 2 cores.

    python examples/pytorch_tutorial.py
"""

import os
import tempfile

import numpy as np
from sklearn.datasets import load_digits

import minigrad as torch
import minigrad.nn as nn
import minigrad.nn.functional as F  # noqa: N812 - the tutorial's name
import minigrad.optim as optim

# ---------------------------------------------------------------- the data (not the tutorial's)
digits = load_digits()
images = np.kron(digits.images / 16.0, np.ones((4, 4)))  # 8x8 -> 32x32, values in [0, 1]
images = ((images - 0.5) / 0.5).astype(np.float32)  # transforms.Normalize((0.5,), (0.5,))
images = np.repeat(images[:, None], 3, axis=1)  # three channels, as CIFAR-10's
order = np.random.default_rng(0).permutation(len(images))
train, test = order[:1500], order[1500:]
trainset = torch.utils.data.TensorDataset(torch.tensor(images[train]),
                                          torch.tensor(digits.target[train]))
testset = torch.utils.data.TensorDataset(torch.tensor(images[test]),
                                         torch.tensor(digits.target[test]))
classes = tuple(str(d) for d in range(10))
torch.manual_seed(0)

# ------------------------------------------------------------------- the tutorial, unchanged
batch_size = 4

trainloader = torch.utils.data.DataLoader(trainset, batch_size=batch_size,
                                          shuffle=True, num_workers=2)
testloader = torch.utils.data.DataLoader(testset, batch_size=batch_size,
                                         shuffle=False, num_workers=2)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)  # flatten all dimensions except batch
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


net = Net()

criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)

for epoch in range(2):  # loop over the dataset multiple times

    running_loss = 0.0
    for i, data in enumerate(trainloader, 0):
        # get the inputs; data is a list of [inputs, labels]
        inputs, labels = data

        # zero the parameter gradients
        optimizer.zero_grad()

        # forward + backward + optimize
        outputs = net(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()

        # print statistics
        running_loss += loss.item()
        if i % 125 == 124:    # print every 125 mini-batches (the tutorial: 2000, of 12500)
            print(f'[{epoch + 1}, {i + 1:5d}] loss: {running_loss / 125:.3f}')
            running_loss = 0.0

print('Finished Training')

PATH = os.path.join(tempfile.mkdtemp(), 'cifar_net.pth')  # the tutorial: './cifar_net.pth'
torch.save(net.state_dict(), PATH)

dataiter = iter(testloader)
images, labels = next(dataiter)

net = Net()
net.load_state_dict(torch.load(PATH, weights_only=True))

outputs = net(images)
_, predicted = torch.max(outputs, 1)

print('Predicted: ', ' '.join(f'{classes[predicted[j]]:5s}'
                              for j in range(4)))

correct = 0
total = 0
# since we're not training, we don't need to calculate the gradients for our outputs
with torch.no_grad():
    for data in testloader:
        images, labels = data
        # calculate outputs by running images through the network
        outputs = net(images)
        # the class with the highest energy is what we choose as prediction
        _, predicted = torch.max(outputs.data, 1)
        total += labels.size(0)
        correct += (predicted == labels).sum().item()

print(f'Accuracy of the network on the {total} test images: {100 * correct // total} %')

# prepare to count predictions for each class
correct_pred = {classname: 0 for classname in classes}
total_pred = {classname: 0 for classname in classes}

# again no gradients needed
with torch.no_grad():
    for data in testloader:
        images, labels = data
        outputs = net(images)
        _, predictions = torch.max(outputs, 1)
        # collect the correct predictions for each class
        for label, prediction in zip(labels, predictions):
            if label == prediction:
                correct_pred[classes[label]] += 1
            total_pred[classes[label]] += 1


# print accuracy for each class
for classname, correct_count in correct_pred.items():
    accuracy = 100 * float(correct_count) / total_pred[classname]
    print(f'Accuracy for class: {classname:5s} is {accuracy:.1f} %')

device = torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')

# Assuming that we are on a CUDA machine, this should print a CUDA device:

print(device)

net.to(device)
inputs, labels = data[0].to(device), data[1].to(device)
