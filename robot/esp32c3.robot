*** Settings ***
Documentation     ESP32-C3 (RV32IMC, 400 KB SRAM, 4 MB flash): the P1 plans of three
...               small zoo models fit, equal their baselines, are bit-exact with the reference
...               and measure the same on unicorn and QEMU.
Resource          resources/msfsim.resource
Suite Setup       Require Backend    ${BACKEND}    ${PLATFORM}


*** Variables ***
${PLATFORM}     esp32c3
${BASELINES}    ${CURDIR}/baselines/esp32c3.json


*** Test Cases ***    MODEL          PLATFORM
Plan fits and matches baseline
    [Template]    Fused Plan Should Fit And Match Baseline
    lenet5-r28     ${PLATFORM}
    resnet8-r32    ${PLATFORM}
    dscnn-kws      ${PLATFORM}

Outputs are bit-exact
    [Template]    Fused Plan Output Should Be Bit Exact
    lenet5-r28     ${PLATFORM}
    resnet8-r32    ${PLATFORM}
    dscnn-kws      ${PLATFORM}

Unicorn and QEMU agree
    [Template]    Fused Plan Backends Should Agree
    lenet5-r28     ${PLATFORM}
    resnet8-r32    ${PLATFORM}
    dscnn-kws      ${PLATFORM}

